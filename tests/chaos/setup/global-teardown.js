// Stops the shared server and writes docs/RELIABILITY.md from the figures the scenarios recorded.
const fs = require("node:fs");
const { renderReport } = require("./render-report");

module.exports = async function globalTeardown() {
  const started = globalThis.__skeinChaosServer;
  if (started) {
    await started.server.stop({ force: true });
    fs.rmSync(started.dataDir, { recursive: true, force: true });
  }
  renderReport();
};
