// ESLint flat config: typescript-eslint's recommended rules on our own code, the
// one-way layering of src/ (eslint-plugin-boundaries), and the size limits of
// docs/ARCHITECTURE.md (files up to 400 lines, functions up to 60).
const js = require("@eslint/js");
const tseslint = require("typescript-eslint");
const boundaries = require("eslint-plugin-boundaries");

/**
 * The layers of src/, each folder allowed to import itself and the folders
 * listed (arrows run one way: cli -> server -> worker -> jobs -> limits,
 * schedules -> db -> core).
 */
const LAYERS = {
  core: [],
  db: ["core"],
  limits: ["db", "core"],
  schedules: ["db", "core"],
  jobs: ["limits", "schedules", "db", "core"],
  worker: ["jobs", "limits", "schedules", "db", "core"],
  server: ["worker", "jobs", "limits", "schedules", "db", "core"],
  cli: ["server", "worker", "jobs", "limits", "schedules", "db", "core"],
};

module.exports = tseslint.config(
  {
    ignores: [
      "dist/", "dist-check/", "src/db/generated/", "node_modules/", ".skein/", "bench/results/", "coverage/",
      "examples/*/src/generated/", "examples/*/node_modules/", "examples/*/.skein/",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.js"],
    languageOptions: { sourceType: "commonjs", globals: { require: "readonly", module: "writable", process: "readonly", console: "readonly", __dirname: "readonly", URL: "readonly", globalThis: "readonly", setTimeout: "readonly" } },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    // The dashboard's ES modules run in the browser (typed by JSDoc, checked by
    // tsconfig.ui.json); uPlot and ELK are the globals of the vendored scripts.
    files: ["src/server/ui/**/*.js"],
    languageOptions: {
      sourceType: "module",
      globals: {
        document: "readonly", window: "readonly", location: "writable", sessionStorage: "readonly", fetch: "readonly", EventSource: "readonly",
        URLSearchParams: "readonly", FormData: "readonly", HashChangeEvent: "readonly", ResizeObserver: "readonly", performance: "readonly",
        setTimeout: "readonly", setInterval: "readonly", clearInterval: "readonly", uPlot: "readonly", ELK: "readonly",
      },
    },
    rules: {
      "max-lines": ["error", { max: 400, skipBlankLines: false, skipComments: false }],
      "max-lines-per-function": ["error", { max: 60, skipBlankLines: true, skipComments: true, IIFEs: true }],
    },
  },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["src/**/*.ts"],
    plugins: { boundaries },
    settings: {
      "import/resolver": { node: { extensions: [".ts", ".js"] } },
      "boundaries/elements": Object.keys(LAYERS).map((type) => ({ type, pattern: `src/${type}` })),
    },
    rules: {
      "boundaries/dependencies": [
        "error",
        {
          default: "disallow",
          policies: Object.entries(LAYERS).map(([type, below]) => ({ from: { element: { type } }, allow: { to: { element: { types: { anyOf: [type, ...below] } } } } })),
        },
      ],
      "max-lines": ["error", { max: 400, skipBlankLines: false, skipComments: false }],
      "max-lines-per-function": ["error", { max: 60, skipBlankLines: true, skipComments: true, IIFEs: true }],
    },
  },
);
