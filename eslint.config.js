// ESLint flat config: typescript-eslint's recommended rules on our own code.
const js = require("@eslint/js");
const tseslint = require("typescript-eslint");

module.exports = tseslint.config(
  { ignores: ["dist/", "dist-check/", "src/db/generated/", "node_modules/", ".skein/", "bench/results/", "coverage/", "examples/*/src/generated/", "examples/*/node_modules/", "examples/*/.skein/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.js"],
    languageOptions: { sourceType: "commonjs", globals: { require: "readonly", module: "writable", process: "readonly", console: "readonly", __dirname: "readonly", URL: "readonly", globalThis: "readonly", setTimeout: "readonly" } },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    // The dashboard's script runs in the browser.
    files: ["src/server/ui/**/*.js"],
    languageOptions: {
      sourceType: "script",
      globals: { document: "readonly", window: "readonly", location: "writable", sessionStorage: "readonly", fetch: "readonly", EventSource: "readonly", URLSearchParams: "readonly", FormData: "readonly", setTimeout: "readonly" },
    },
  },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
);
