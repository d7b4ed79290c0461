// Drops the template database and stops the embedded server (if one was started).
const fs = require("node:fs");
const pg = require("pg");

module.exports = async function globalTeardown() {
  const adminUrl = process.env.SKEIN_TEST_ADMIN_URL;
  const started = globalThis.__skeinTestServer;
  if (started) {
    await started.server.stop({ force: true });
    fs.rmSync(started.dataDir, { recursive: true, force: true });
    return;
  }
  if (!adminUrl) return;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(process.env.SKEIN_TEST_TEMPLATE)} WITH (FORCE)`);
  await admin.end();
};
