/**
 * The fault-injection suite (`npm run test:chaos`): real worker processes,
 * kill -9, SIGSTOP, database restarts and generated bad input, checked
 * against the invariants in helpers/checker.ts. Scenarios run one at a time
 * (they start processes and time leases; two at once on 2 cores would only
 * measure the machine). `CHAOS_BUDGET=short` selects the CI sizes.
 * Files are named *.chaos.ts so the main jest config (*.test.ts) never runs them.
 * @type {import('jest').Config}
 */
const path = require("node:path");

const short = process.env.CHAOS_BUDGET === "short";

module.exports = {
  rootDir: path.resolve(__dirname, "..", ".."),
  testEnvironment: "node",
  roots: ["<rootDir>/tests/chaos"],
  testMatch: ["**/*.chaos.ts"],
  transform: {
    "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }],
  },
  globalSetup: "<rootDir>/tests/chaos/setup/global-setup.js",
  globalTeardown: "<rootDir>/tests/chaos/setup/global-teardown.js",
  maxWorkers: 1,
  // A scenario's own deadlines are tighter than this; this only stops a hung hook.
  testTimeout: short ? 240_000 : 1_200_000,
  // Scenarios are named in order of increasing cost; run them in that order.
  testSequencer: "<rootDir>/tests/chaos/setup/sequencer.js",
};
