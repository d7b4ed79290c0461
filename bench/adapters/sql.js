"use strict";
// The ceiling: a job queue in plain SQL over `pg`, no library and no Skein
// code. A jobs table of its own; a worker process runs <c> loops, each of
// which claims up to BATCH ready rows with one
//   UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n) ... RETURNING
// runs them, and completes the whole batch with one DELETE. Nothing else:
// no leases renewed, no retries, no history, no LISTEN/NOTIFY (a loop that
// finds nothing sleeps IDLE_MS), so it only runs the drain cases. What a
// library adds on top of this is what it costs over this loop.
const fs = require("node:fs");
const path = require("node:path");
const { randomUUID } = require("node:crypto");
const { setTimeout: sleep } = require("node:timers/promises");
const pg = require("pg");

// Rows per claim and per completion (one loop's batch); BENCH_SQL_BATCH changes it.
const BATCH = Number(process.env.BENCH_SQL_BATCH ?? 100);
const IDLE_MS = 10;
const SCHEMA = "plainq";

const DDL = `
CREATE SCHEMA ${SCHEMA};
CREATE TABLE ${SCHEMA}.jobs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task text NOT NULL DEFAULT 'noop',
  payload jsonb NOT NULL DEFAULT '{}',
  run_at timestamptz NOT NULL DEFAULT now(),
  attempts int NOT NULL DEFAULT 0,
  locked_by text,
  locked_at timestamptz
);
CREATE INDEX jobs_ready_idx ON ${SCHEMA}.jobs (run_at, id) WHERE locked_at IS NULL;
`;

const INSERT = `INSERT INTO ${SCHEMA}.jobs (payload, run_at)
  SELECT p, coalesce(r, now()) FROM unnest($1::jsonb[], $2::timestamptz[]) AS t(p, r) RETURNING id`;

const CLAIM = `UPDATE ${SCHEMA}.jobs AS j SET locked_by = $1, locked_at = now(), attempts = j.attempts + 1
  FROM (SELECT id FROM ${SCHEMA}.jobs WHERE locked_at IS NULL AND run_at <= now()
        ORDER BY run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) AS c
  WHERE j.id = c.id
  RETURNING j.id, j.payload`;

const COMPLETE = `DELETE FROM ${SCHEMA}.jobs WHERE id = ANY($1::bigint[])`;

function newPool(url, max, applicationName) {
  const pool = new pg.Pool({ connectionString: url, max, application_name: applicationName });
  pool.on("error", () => undefined);
  return pool;
}

module.exports = {
  name: "sql",
  label: "plain SQL",
  kinds: ["drain"],
  version: () => `pg ${JSON.parse(fs.readFileSync(path.join(path.dirname(require.resolve("pg")), "..", "package.json"), "utf8")).version}`,
  supportsDependencies: false,
  BATCH,
  settings: {
    worker: `<c> loops per process on a pg.Pool of 10: claim up to ${BATCH} rows (${CLAIM.replace(/\s+/g, " ")}), run them, then ${COMPLETE}; a loop that claims nothing sleeps ${IDLE_MS} ms (BENCH_SQL_BATCH changes the batch)`,
    client: `pg.Pool of 10: ${INSERT.replace(/\s+/g, " ")}`,
    table: DDL.replace(/\s+/g, " ").trim(),
    history: "none (completed jobs are deleted)",
  },

  async install(url) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(DDL);
    } finally {
      await client.end();
    }
  },

  remainingQuery(ids) {
    return { text: `SELECT id FROM ${SCHEMA}.jobs WHERE id = ANY($1::bigint[])`, values: [ids] };
  },

  tables() {
    return { queue: `${SCHEMA}.jobs`, readyIndex: /ready/ };
  },

  async openProducer(url, { pool: size }) {
    const pool = newPool(url, size, "bench-producer");
    const insert = async (specs) => {
      const { rows } = await pool.query({
        name: "insert",
        text: INSERT,
        values: [specs.map((s) => JSON.stringify(s.payload ?? {})), specs.map((s) => s.runAt ?? null)],
      });
      return rows.map((r) => r.id);
    };
    return {
      async addOne(payload) {
        return (await insert([{ payload }]))[0];
      },
      addMany: insert,
      async addGraph() {
        throw new Error("the plain SQL queue has no job dependencies");
      },
      async close() {
        await pool.end();
      },
    };
  },

  async openWorker(url, { concurrency, pool: size, onStart, onEnd }) {
    const pool = newPool(url, size, "bench-worker");
    const workerId = randomUUID();
    let running = false;
    let loops = [];
    const run = async (row) => {
      onStart(row.payload && row.payload.k !== undefined ? row.payload.k : row.id, row.payload);
      onEnd(row.payload && row.payload.k !== undefined ? row.payload.k : row.id);
    };
    const loop = async () => {
      while (running) {
        const { rows } = await pool.query({ name: "claim", text: CLAIM, values: [workerId, BATCH] });
        if (rows.length === 0) {
          await sleep(IDLE_MS);
          continue;
        }
        await Promise.all(rows.map(run));
        await pool.query({ name: "complete", text: COMPLETE, values: [rows.map((r) => r.id)] });
      }
    };
    return {
      async start() {
        running = true;
        loops = Array.from({ length: concurrency }, () =>
          loop().catch((error) => process.stderr.write(`[plain SQL] loop failed: ${error.message}\n`)),
        );
      },
      async stop() {
        running = false;
        await Promise.all(loops);
        await pool.end();
      },
    };
  },
};
