/**
 * Jest runs the TypeScript sources through ts-jest (CommonJS, the same module
 * system as the build). Every test file gets its own PostgreSQL database, made
 * from a migrated template by tests/helpers/db.ts, so files run in parallel.
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/tests"],
  testMatch: ["**/*.test.ts"],
  transform: {
    "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }],
  },
  globalSetup: "<rootDir>/tests/setup/global-setup.js",
  globalTeardown: "<rootDir>/tests/setup/global-teardown.js",
  testTimeout: 60000,
  maxWorkers: 2,
};
