#!/usr/bin/env node
// Waiting without a slot (issue 21): `--parents` parent jobs (default 1,000)
// each delegate 10 children with ctx.delegateAll and wait for them, on ONE
// worker with maxConcurrentJobs 4. A parent that waits is parked (no slot, no
// lease) and resumes when its children have ended, so all finish. Reports the
// wall time, jobs per second (parents and children), the parents' attempts
// (1 run + 1 resume each when nothing else happens), the worker's CPU per job,
// and how many jobs ran at once at most (never more than the slots).
//
//   npm run build && node bench/workflow.js [--database-url URL] [--parents 1000] [--prefetch 0]
//
// Writes bench/results/workflow-<time>.json and prints one line.
const path = require("node:path");
const { mkdirSync, writeFileSync } = require("node:fs");
const skein = require("../dist");
const { arg, scratchServer } = require("./lib/scratch");

(async () => {
  const parents = Number(arg("parents", "1000"));
  const prefetch = Number(arg("prefetch", "0"));
  const server = await scratchServer(arg("database-url"));
  const url = await server.database(`workflow_${Date.now().toString(36)}`);
  await skein.migrate(url);
  const prisma = skein.createPrismaClient(url, { maxConnections: 10 });
  const jm = new skein.JobManager(prisma);
  // Executors running at once, counted from inside them.
  let running = 0;
  let mostAtOnce = 0;
  const counted = async (fn) => {
    mostAtOnce = Math.max(mostAtOnce, ++running);
    try {
      return await fn();
    } finally {
      running--;
    }
  };
  const worker = new skein.Worker({
    prisma,
    maxConcurrentJobs: 4,
    prefetch,
    pollInterval: 1,
    agentRegistry: {
      parent: (_p, ctx) =>
        counted(async () => {
          const results = await ctx.delegateAll(Array.from({ length: 10 }, (_, i) => ({ jobType: "agent", name: `child ${i}`, payload: { agent_name: "child", parameters: i } })), { wait: true });
          return results.reduce((a, b) => a + b, 0);
        }),
      child: (p) => counted(async () => p),
    },
  });
  await jm.createJobs(Array.from({ length: parents }, (_, i) => ({ id: `p${i}`, jobType: "agent", name: "parent", payload: { agent_name: "parent" } })));
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  await worker.start();
  while ((await jm.listJobs({ limit: 1 })).length > 0) await new Promise((r) => setTimeout(r, 100));
  const seconds = (Date.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await worker.stop();
  const history = await jm.getJobHistory({ limit: 1, name: "parent" });
  const done = await prisma.$queryRawUnsafe(
    "SELECT CASE WHEN parent_id IS NULL THEN 'parents' ELSE 'children' END AS kind, status, count(*)::int AS n, sum(attempts)::int AS attempts FROM skein.job_history GROUP BY 1, 2 ORDER BY 1, 2",
  );
  const jobs = parents * 11;
  const result = {
    at: new Date().toISOString(),
    parents,
    children: parents * 10,
    slots: 4,
    prefetch,
    seconds,
    jobsPerSecond: Math.round(jobs / seconds),
    cpuMsPerJob: Math.round(((cpu.user + cpu.system) / 1000 / jobs) * 1000) / 1000,
    mostRunningAtOnce: mostAtOnce,
    finished: done,
    sampleResult: history[0]?.result,
  };
  mkdirSync(path.join(__dirname, "results"), { recursive: true });
  writeFileSync(path.join(__dirname, "results", `workflow-${Date.now()}.json`), JSON.stringify(result, null, 2));
  console.log(JSON.stringify(result));
  await prisma.$disconnect();
  await server.close();
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
