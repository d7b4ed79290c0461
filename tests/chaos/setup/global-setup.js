// Starts the embedded PostgreSQL that most scenarios share (each makes its own
// database on it; the database-fault scenario starts a server of its own so
// it can stop and restart it) and empties the folder of per-scenario figures.
// Uses the build in dist/ (`npm run test:chaos` builds first).
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { startEmbeddedDatabase } = require("../../../dist/db");

module.exports = async function globalSetup() {
  const resultsDir = path.join(__dirname, "..", ".results");
  fs.rmSync(resultsDir, { recursive: true, force: true });
  fs.mkdirSync(resultsDir, { recursive: true });
  process.env.CHAOS_RESULTS_DIR = resultsDir;
  process.env.CHAOS_SUITE_STARTED = String(Date.now());
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "skein-chaos-"));
  fs.chmodSync(dataDir, 0o755); // the server runs as the postgres user when we are root
  const server = await startEmbeddedDatabase({
    dataDir,
    // Nothing restarts this server, so durability buys nothing here.
    settings: { fsync: "off", synchronous_commit: "off", full_page_writes: "off" },
  });
  globalThis.__skeinChaosServer = { server, dataDir };
  process.env.CHAOS_ADMIN_URL = server.adminUrl;
};
