// Starts the PostgreSQL the tests run on and migrates a template database that
// every test file copies (CREATE DATABASE ... TEMPLATE), so files run in
// parallel, each on its own database. TEST_DATABASE_URL selects a server you
// run yourself (the role needs CREATEDB); otherwise an embedded server is
// started in a temporary folder. Uses the build in dist/ (`npm test` builds first).
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const pg = require("pg");
const { startEmbeddedDatabase, migrate } = require("../../dist/db");

module.exports = async function globalSetup() {
  let adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl) {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "skein-test-"));
    const server = await startEmbeddedDatabase({
      dataDir,
      // A throwaway cluster: durability buys nothing here.
      settings: { fsync: "off", synchronous_commit: "off", full_page_writes: "off" },
    });
    globalThis.__skeinTestServer = { server, dataDir };
    adminUrl = server.adminUrl;
  }
  const template = `skein_template_${process.pid}_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(template)}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${template}`;
  await migrate(url.toString());
  process.env.SKEIN_TEST_ADMIN_URL = adminUrl;
  process.env.SKEIN_TEST_TEMPLATE = template;
};
