#!/usr/bin/env node
// Steady traffic over a large backlog, for minutes: does the claim's cost stay bounded?
//
//   node bench/backlog-vacuum.js [--dist dist] [--table-settings shipped|defaults|"<storage parameters>"]
//        [--backlog 1000000] [--burst 10000] [--rounds 12] [--period 30]
//
// Starts an embedded server with pg_stat_statements, migrates a database, and
// builds the benchmark's backlog (half blocked on a gate job, half scheduled a
// day ahead; bench/lib/graphs.js). `--table-settings` then leaves the jobs
// table as the migrations set it (`shipped`), resets its per-table autovacuum
// settings to the server's (`defaults`), or sets the given storage parameters.
// One Worker (c=10, prefetch 100) runs throughout; every `period` seconds
// `burst` ready no-op jobs are created (1,000 per call) and drained. Per round
// it prints the drain's jobs/s, the claim statement's execution time per job
// (pg_stat_statements), the buffers an empty claim scan reads (EXPLAIN
// (ANALYZE, BUFFERS) of the claim's candidate scan, without its row locks, once
// no job is ready: the dead head of jobs_ready_idx), the dead rows of jobs, how often autovacuum has vacuumed
// it, and the readiness index's size in pages. Autovacuum visits a database
// about once a minute, so rounds must span minutes.
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { clearTimeout } = require("node:timers");
const pg = require("pg");
const graphs = require("./lib/graphs");
const { arg } = require("./lib/scratch");

const SETTINGS = ["autovacuum_vacuum_scale_factor", "autovacuum_vacuum_threshold", "vacuum_index_cleanup"];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const CLAIM_STATS = `SELECT coalesce(sum(calls), 0)::float8 AS calls, coalesce(sum(total_exec_time), 0)::float8 AS ms
  FROM pg_stat_statements WHERE query LIKE '%WITH candidates AS MATERIALIZED%'`;
// The claim's candidate scan over jobs_ready_idx (src/db/sql/claim.ts), without its row locks
// and worker filter; with no job ready it reads the whole dead head.
const EMPTY_SCAN = `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT id FROM jobs
  WHERE status = 'pending' AND pending_dependencies = 0 AND COALESCE(tenant, '') = '' AND run_at <= now()
    AND rate_limit_key IS NULL AND concurrency_key IS NULL
  ORDER BY priority DESC, run_at, id LIMIT 50`;
const DRAIN_TIMEOUT_MS = 600_000;

(async () => {
  const skein = require(path.resolve(arg("dist", "dist")));
  const tableSettings = arg("table-settings", "shipped");
  const backlog = Number(arg("backlog", "1000000"));
  const burst = Number(arg("burst", "10000"));
  const rounds = Number(arg("rounds", "12"));
  const period = Number(arg("period", "30"));
  if (![backlog, burst, rounds, period].every((n) => Number.isInteger(n) && n >= 0) || burst < 1) {
    throw new Error("--backlog, --rounds and --period take whole numbers, --burst one of at least 1");
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "skein-vacuum-"));
  let server;
  let admin;
  let prisma;
  let worker;
  try {
    fs.chmodSync(dataDir, 0o755); // as root the server runs as `postgres`, which must reach its data folder
    server = await skein.startEmbeddedDatabase({ dataDir, settings: { shared_preload_libraries: "pg_stat_statements" } });
    admin = new pg.Client({ connectionString: server.url });
    await skein.migrate(server.url);
    await admin.connect();
    await admin.query("CREATE EXTENSION pg_stat_statements");
    // Skein's tables live in a schema of their own (skein by default); the statements below name them bare.
    await admin.query(`SET search_path TO "${skein.DEFAULT_SCHEMA ?? "public"}", public`);
    if (tableSettings === "defaults") await admin.query(`ALTER TABLE jobs RESET (${SETTINGS.join(", ")})`);
    else if (tableSettings !== "shipped") await admin.query(`ALTER TABLE jobs SET (${tableSettings})`);
    const { rows: rel } = await admin.query("SELECT reloptions FROM pg_class WHERE oid = 'jobs'::regclass");
    console.log(`jobs table settings: ${(rel[0].reloptions ?? ["(server defaults)"]).join(", ")}`);

    prisma = skein.createPrismaClient(server.url, { maxConnections: 10 });
    const jobManager = new skein.JobManager(prisma);
    const toInput = (s) => ({ id: s.key, jobType: "agent", name: "backlog", dependencies: s.deps, runAt: s.runAt });
    const t0 = Date.now();
    for (const { specs } of graphs.backlogChunks(backlog)) await jobManager.createJobs(specs.map(toInput));
    console.log(`backlog of ${backlog} jobs created in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    worker = new skein.Worker({ prisma, maxConcurrentJobs: 10, prefetch: 100 });
    worker.addExecutor({ canExecute: () => true, execute: async () => null });
    let done = 0;
    let target = Infinity;
    let finish = () => undefined;
    worker.on("job:complete", () => {
      if (++done >= target) finish();
    });
    await worker.start();
    const out = [];
    const start = Date.now();
    for (let round = 0; round < rounds; round++) {
      const due = start + round * period * 1000;
      if (Date.now() < due) await sleep(due - Date.now());
      const before = (await admin.query(CLAIM_STATS)).rows[0];
      target = done + burst;
      let timer;
      const drained = new Promise((resolve, reject) => {
        finish = resolve;
        timer = setTimeout(() => reject(new Error(`round ${round}: ${target - done} jobs not done after ${DRAIN_TIMEOUT_MS / 1000} s`)), DRAIN_TIMEOUT_MS);
      });
      const t1 = Date.now();
      for (let k = 0; k < burst; k += 1000) {
        await jobManager.createJobs(Array.from({ length: Math.min(1000, burst - k) }, () => ({ jobType: "agent", name: "noop" })));
      }
      await drained.finally(() => clearTimeout(timer));
      const seconds = (Date.now() - t1) / 1000;
      const after = (await admin.query(CLAIM_STATS)).rows[0];
      const [plan] = (await admin.query(EMPTY_SCAN)).rows[0]["QUERY PLAN"];
      const { rows } = await admin.query(`SELECT n_dead_tup::int AS dead, autovacuum_count::int AS vacuums,
        (pg_relation_size('jobs_ready_idx') / current_setting('block_size')::int)::int AS index_pages
        FROM pg_stat_user_tables WHERE relname = 'jobs'`);
      const row = {
        round,
        at_s: Math.round((t1 - start) / 1000),
        jobs_per_s: Math.round(burst / seconds),
        claim_us_per_job: Number((((after.ms - before.ms) * 1000) / burst).toFixed(1)),
        empty_scan_buffers: plan.Plan["Shared Hit Blocks"] + plan.Plan["Shared Read Blocks"],
        ...rows[0],
      };
      out.push(row);
      console.log(JSON.stringify(row));
    }
    console.table(out);
  } finally {
    await worker?.stop().catch(() => undefined);
    await prisma?.$disconnect().catch(() => undefined);
    await admin?.end().catch(() => undefined);
    await server?.stop().catch(() => undefined);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
