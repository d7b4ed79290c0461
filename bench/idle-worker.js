#!/usr/bin/env node
// A worker that idled before a burst, against one started after it.
//
//   node bench/idle-worker.js [--dist dist] [--kinds dag,chains] [--repeats 2]
//
// "started after": a fresh database; the graph is created, then a worker
// (c=50) starts and runs it. "idle first": the tables are analysed while empty
// (as autovacuum does once a queue drains), a worker starts and runs a few
// tiny jobs (so its prepared claim/complete statements are planned on empty
// tables), then the same graph is created while it runs. The time is from the
// first createJobs call to the last job's completion. Graphs: a random DAG of
// 50,000 jobs with 2-5 dependencies each; 100 chains of 100 jobs.
// Prints one line per run and a median per kind and mode.
const path = require("node:path");
const pg = require("pg");
const graphs = require("./lib/graphs");
const { arg, median, scratchServer } = require("./lib/scratch");

async function runOnce(skein, server, kind, idleFirst, label) {
  const url = await server.database(`idle_${label}_${Date.now().toString(36)}`);
  await skein.migrate(url);
  const prisma = skein.createPrismaClient(url, { maxConnections: 54 });
  const jm = new skein.JobManager(prisma);
  const worker = new skein.Worker({ prisma, maxConcurrentJobs: 50 });
  let done = 0;
  let target = Infinity;
  let finish;
  worker.addExecutor({ canExecute: () => true, execute: async () => (++done >= target && finish(), null) });
  const specs = kind === "dag" ? graphs.dag(50_000) : graphs.chains(100, 100);
  const inputs = specs.map((s) => ({ id: s.key, jobType: "agent", name: "noop", dependencies: s.deps }));
  if (idleFirst) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query("VACUUM ANALYZE");
    await c.end();
    await worker.start();
    for (let i = 0; i < 20; i++) {
      const a = await jm.createJob({ jobType: "agent", name: "warm" });
      await jm.createJob({ jobType: "agent", name: "warm", dependencies: [a.id] });
    }
    while ((await jm.listJobs({ limit: 1 })).length > 0) await new Promise((r) => setTimeout(r, 20));
    done = 0;
  }
  const finished = new Promise((r) => (finish = r));
  target = inputs.length;
  const t0 = Date.now();
  for (let i = 0; i < inputs.length; i += 10_000) await jm.createJobs(inputs.slice(i, i + 10_000));
  if (!idleFirst) await worker.start();
  await finished;
  const seconds = (Date.now() - t0) / 1000;
  await worker.stop();
  await prisma.$disconnect();
  return seconds;
}

(async () => {
  const distDir = path.resolve(arg("dist", "dist"));
  const kinds = arg("kinds", "dag,chains").split(",");
  const repeats = Number(arg("repeats", "2"));
  const skein = require(distDir);
  const server = await scratchServer();
  const times = {};
  try {
    for (let r = 0; r < repeats; r++) {
      for (const kind of kinds) {
        for (const idleFirst of [false, true]) {
          const key = `${kind} ${idleFirst ? "idle first" : "started after"}`;
          const s = await runOnce(skein, server, kind, idleFirst, `${kind}${idleFirst ? "i" : "s"}${r}`);
          (times[key] ??= []).push(s);
          console.log(`${key}: ${s.toFixed(1)} s`);
        }
      }
    }
    console.log(`\n${distDir}, median of ${repeats}:`);
    for (const [key, xs] of Object.entries(times)) console.log(`  ${key.padEnd(24)} ${median(xs).toFixed(1)} s  (${xs.map((x) => x.toFixed(1)).join(", ")})`);
  } finally {
    await server.close();
  }
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
