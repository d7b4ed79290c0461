"use strict";
// What the measurement scripts (ab-drain, bench-flow, bench-idle-worker)
// share: command-line options, and the benchmark's own helpers for medians
// (bench/lib/stats.js) and throwaway databases (bench/lib/server.js).
const { openServer, PREFIX } = require("./server");
const { median } = require("./stats");

/** The value after `--name` on the command line, or `fallback`. */
function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

/**
 * A PostgreSQL server for a script's databases, as the benchmark opens it:
 * the one at `databaseUrl` when given, else an embedded one in a temporary
 * folder. `database(name)` creates a database and returns its URL; `close()`
 * drops those databases and stops the embedded server.
 */
async function scratchServer(databaseUrl) {
  const server = await openServer({ databaseUrl });
  return {
    database: (name) => server.createDatabase(`${PREFIX}${name}`),
    close: () => server.close(),
  };
}

module.exports = { arg, median, scratchServer };
