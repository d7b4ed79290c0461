#!/usr/bin/env node
// A/B drain benchmark: the same no-op drain on two builds of Skein, in one run,
// on one embedded PostgreSQL (a fresh database per run), alternating the order.
// Prints medians of throughput and of the worker's CPU per job (the worker runs
// in this process).
//
//   node bench/ab-drain.js --before /path/to/old/dist --after dist [--jobs 20000] [--concurrency 10,50] [--repeats 3]
//     [--before-options '{"prefetch":0}'] [--after-options '{"prefetch":100}']   (extra Worker options per side)
//
// Used for issue 6's "no-op throughput with flow control unused drops by less
// than 10%": --before is a build of the commit before flow control.
const os = require("node:os");
const path = require("node:path");
const { arg, median, scratchServer } = require("./lib/scratch");

async function drainOnce(distDir, server, jobs, concurrency, label, workerOptions = {}) {
  const skein = require(path.resolve(distDir));
  const url = await server.database(`ab_${label}_${concurrency}_${Date.now().toString(36)}`);
  await skein.migrate(url);
  const prisma = skein.createPrismaClient(url, { maxConnections: concurrency + 4 });
  const jm = new skein.JobManager(prisma);
  for (let i = 0; i < jobs; i += 1000) await jm.createJobs(Array.from({ length: Math.min(1000, jobs - i) }, () => ({ jobType: "agent", name: "noop" })));
  const worker = new skein.Worker({ prisma, maxConcurrentJobs: concurrency, pollInterval: 1, ...workerOptions });
  worker.addExecutor({ canExecute: () => true, execute: async () => null });
  let done = 0;
  const finished = new Promise((resolve) => worker.on("job:complete", () => ++done === jobs && resolve()));
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  await worker.start();
  await finished;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  await worker.stop();
  await prisma.$disconnect();
  // The worker runs in this process: its CPU (user + system) per job, in µs.
  return { rate: jobs / seconds, cpu: (cpu.user + cpu.system) / jobs };
}

(async () => {
  const before = arg("before");
  const after = arg("after", "dist");
  if (!before) throw new Error("--before <dist folder of the older build> is required");
  const jobs = Number(arg("jobs", "20000"));
  const concurrencies = arg("concurrency", "10,50").split(",").map(Number);
  const repeats = Number(arg("repeats", "3"));
  const server = await scratchServer();
  console.log(`A/B drain of ${jobs} no-op jobs, ${repeats} runs each, alternating; PostgreSQL with default durability; load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  console.log("| concurrency | before (jobs/s) | after (jobs/s) | after ÷ before | worker CPU per job, before → after (µs) |\n|---:|---:|---:|---:|---:|");
  try {
    for (const c of concurrencies) {
      const runs = { before: [], after: [] };
      for (let r = 0; r < repeats; r++) {
        const order = r % 2 === 0 ? ["before", "after"] : ["after", "before"];
        for (const label of order) runs[label].push(await drainOnce(label === "before" ? before : after, server, jobs, c, label, JSON.parse(arg(`${label}-options`, "{}"))));
      }
      const b = median(runs.before.map((r) => r.rate));
      const a = median(runs.after.map((r) => r.rate));
      const cpu = (side) => median(runs[side].map((r) => r.cpu)).toFixed(1);
      console.log(`| ${c} | ${b.toFixed(0)} | ${a.toFixed(0)} | ${(a / b).toFixed(2)}× | ${cpu("before")} → ${cpu("after")} |`);
    }
  } finally {
    await server.close();
  }
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
