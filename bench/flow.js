#!/usr/bin/env node
// Flow-control benchmark (issue 6): 3 tenants × 3 providers with rate limits.
// Two worker processes' worth of workers (two Worker instances, c=20 each) run
// no-op jobs charged to openai (100/s), anthropic (60/s) and gemini (40/s) for
// a big, a medium and a small tenant; the small tenant's jobs are created
// while the big one's backlog is queued. Reports the rate each key achieved
// against its limit over a 10 s window, and how long the small tenant waited.
//
//   npm run build && node bench/flow.js [--database-url URL] [--seconds 10]
//
// Writes bench/results/flow-<time>.json and prints a table.
const os = require("node:os");
const path = require("node:path");
const { mkdirSync, writeFileSync } = require("node:fs");
const skein = require("../dist");
const { arg, scratchServer } = require("./lib/scratch");

const LIMITS = { openai: 100, anthropic: 60, gemini: 40 };
const TENANTS = { big: 3000, medium: 600, small: 30 };

const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};

(async () => {
  const windowSeconds = Number(arg("seconds", "10"));
  const server = await scratchServer(arg("database-url"));
  const url = await server.database(`flow_${Date.now().toString(36)}`);
  await skein.migrate(url);
  const prisma = skein.createPrismaClient(url, { maxConnections: 20 });
  const jm = new skein.JobManager(prisma);
  for (const [key, perSecond] of Object.entries(LIMITS)) await jm.setRateLimit(key, { perSecond });

  const keys = Object.keys(LIMITS);
  const jobsOf = (tenant, n) => Array.from({ length: n }, (_, i) => ({ jobType: "agent", name: `${tenant} ${i}`, tenant, rateLimitKey: keys[i % keys.length], payload: { agent_name: "noop" } }));
  await jm.createJobs(jobsOf("big", TENANTS.big));
  await jm.createJobs(jobsOf("medium", TENANTS.medium));

  const starts = [];
  const workers = [0, 1].map((i) => {
    const w = new skein.Worker({ prisma, maxConcurrentJobs: 20, pollInterval: 1, workerId: `bench-flow-${i}` });
    w.on("job:start", (job) => starts.push({ at: Date.now(), key: job.rateLimitKey, tenant: job.tenant, created: job.createdAt.getTime() }));
    return w;
  });
  for (const w of workers) await w.start();
  await new Promise((r) => setTimeout(r, 2000));
  const smallCreated = Date.now();
  await jm.createJobs(jobsOf("small", TENANTS.small));
  await new Promise((r) => setTimeout(r, windowSeconds * 1000 + 1000));
  for (const w of workers) await w.stop({ force: true });

  // The window: from 1 s after the first start (buckets begin full), for `windowSeconds`.
  const t0 = Math.min(...starts.map((s) => s.at)) + 1000;
  const inWindow = starts.filter((s) => s.at >= t0 && s.at < t0 + windowSeconds * 1000);
  const perKey = Object.fromEntries(keys.map((k) => {
    const n = inWindow.filter((s) => s.key === k).length;
    return [k, { limit: LIMITS[k], achieved: n / windowSeconds, ratio: n / windowSeconds / LIMITS[k] }];
  }));
  const smallWaits = starts.filter((s) => s.tenant === "small").map((s) => s.at - smallCreated);
  const result = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, load: os.loadavg() },
    setup: { limits: LIMITS, tenants: TENANTS, workers: "2 × c=20", windowSeconds },
    perKey,
    small: { jobs: TENANTS.small, started: smallWaits.length, waitMs: { p50: percentile(smallWaits, 50), max: Math.max(...smallWaits) } },
    startsByTenantInWindow: Object.fromEntries(Object.keys(TENANTS).map((t) => [t, inWindow.filter((s) => s.tenant === t).length])),
  };
  console.log(`Flow control: 3 tenants × 3 providers, 2 workers × c=20, ${windowSeconds} s window (load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")})`);
  console.log("| key | limit (jobs/s) | achieved (jobs/s) | achieved ÷ limit |\n|---|---:|---:|---:|");
  for (const [k, v] of Object.entries(perKey)) console.log(`| ${k} | ${v.limit} | ${v.achieved.toFixed(1)} | ${v.ratio.toFixed(3)} |`);
  console.log(`small tenant: ${result.small.started}/${TENANTS.small} jobs started; wait from creation to start p50 ${result.small.waitMs.p50} ms, max ${result.small.waitMs.max} ms (behind ${TENANTS.big + TENANTS.medium} queued jobs)`);
  console.log(`starts in the window by tenant: ${JSON.stringify(result.startsByTenantInWindow)}`);
  const dir = path.join(__dirname, "..", "bench", "results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `flow-${result.date.replace(/[:.]/g, "-")}.json`), JSON.stringify(result, null, 2));
  await prisma.$disconnect();
  await server.close();
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
