"use strict";
// What the measurement scripts (ab-drain, bench-flow, bench-idle-worker)
// share: command-line options, medians, and throwaway databases on an embedded
// PostgreSQL in a temporary folder (or on a server the caller names).
const os = require("node:os");
const path = require("node:path");
const { mkdtempSync, chmodSync, rmSync } = require("node:fs");
const pg = require("pg");

/** The value after `--name` on the command line, or `fallback`. */
function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * A PostgreSQL server for a script's databases: the one at `adminUrl` when
 * given, else an embedded one (started with `skein`, a loaded build) in a
 * temporary folder that `stop()` removes.
 */
async function scratchServer(skein, { adminUrl, prefix = "skein-scratch-" } = {}) {
  if (adminUrl) return { adminUrl, stop: async () => undefined };
  const dataDir = mkdtempSync(path.join(os.tmpdir(), prefix));
  chmodSync(dataDir, 0o755); // the server may run as another user when started as root
  const server = await skein.startEmbeddedDatabase({ dataDir });
  return {
    adminUrl: server.adminUrl,
    async stop() {
      await server.stop({ force: true });
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Creates database `name` on the server at `adminUrl` and returns its URL. */
async function createDatabase(adminUrl, name) {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

module.exports = { arg, median, scratchServer, createDatabase };
