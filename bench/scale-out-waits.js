#!/usr/bin/env node
// Where a drain's server time goes with one worker against four (issue 22's scale-out):
// an embedded PostgreSQL with pg_stat_statements, 20,000 no-op jobs drained by 1 then 4
// workers (c=10 each, each with its own pool, Skein's defaults), twice, a fresh database
// each time. Prints throughput, the active backends by wait event (pg_stat_activity
// sampled every 5 ms) and the two hot statements' execution time per job.
//
//   npm run build && node bench/scale-out-waits.js [jobs]
const path = require("node:path"), fs = require("node:fs"), os = require("node:os"), pg = require("pg");
const skein = require(path.resolve(__dirname, "../dist"));
const JOBS = Number(process.argv[2] || 20000);
(async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "skein-so-"));
  fs.chmodSync(dataDir, 0o755);
  const server = await skein.startEmbeddedDatabase({ dataDir, settings: { shared_preload_libraries: "pg_stat_statements", "pg_stat_statements.track": "all" } });
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query("CREATE EXTENSION pg_stat_statements");
  for (const n of [1, 4, 1, 4]) {
    const db = `so_${n}_${Date.now().toString(36)}`;
    await admin.query(`CREATE DATABASE ${db}`);
    const url = server.url.replace(/\/[^/?]*(\?|$)/, `/${db}$1`);
    await skein.migrate(url);
    const p0 = skein.createPrismaClient(url, { maxConnections: 4 });
    const jm = new skein.JobManager(p0);
    for (let i = 0; i < JOBS; i += 1000) await jm.createJobs(Array.from({ length: 1000 }, () => ({ jobType: "agent", name: "noop" })));
    await admin.query("SELECT pg_stat_statements_reset()");
    const workers = [];
    let done = 0;
    let resolve;
    const finished = new Promise((r) => (resolve = r));
    for (let k = 0; k < n; k++) {
      const prisma = skein.createPrismaClient(url, { maxConnections: 14 });
      const w = new skein.Worker({ prisma, maxConcurrentJobs: 10, workerId: `w${k}` });
      w.addExecutor({ canExecute: () => true, execute: async () => null });
      w.on("job:complete", () => ++done === JOBS && resolve());
      workers.push({ w, prisma });
    }
    const t0 = Date.now();
    const waits = new Map();
    let sampling = true, samples = 0;
    const sampler = (async () => {
      while (sampling) {
        const { rows } = await admin.query("SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS w, left(regexp_replace(query, '\\s+', ' ', 'g'), 30) AS q FROM pg_stat_activity WHERE datname = $1 AND state = 'active'", [db]);
        samples++;
        for (const r of rows) { const k = `${r.w} | ${r.q}`; waits.set(k, (waits.get(k) || 0) + 1); }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await Promise.all(workers.map((x) => x.w.start()));
    await finished;
    sampling = false; await sampler;
    const s = (Date.now() - t0) / 1000;
    for (const x of workers) { await x.w.stop(); await x.prisma.$disconnect(); }
    await p0.$disconnect();
    const { rows } = await admin.query(`SELECT calls, rows, total_exec_time, regexp_replace(left(query, 90), '\\s+', ' ', 'g') AS q FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1) ORDER BY total_exec_time DESC LIMIT 8`, [db]);
    console.log(`\n== ${n} worker(s) x c=10: ${JOBS} jobs in ${s.toFixed(2)} s = ${(JOBS / s).toFixed(0)} jobs/s`);
    console.log(`active backends by wait event (${samples} samples):`);
    for (const [k, v] of [...waits].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`  ${(v / samples).toFixed(2)}  ${k}`);
    for (const r of rows.slice(0, 2)) console.log(`${(r.total_exec_time * 1000 / JOBS).toFixed(1).padStart(7)} us/job  ${String(r.calls).padStart(6)} calls ${String(r.rows).padStart(7)} rows  ${r.q}`);
  }
  await admin.end();
  await server.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
})().catch((e) => { console.error(e); process.exit(1); });
