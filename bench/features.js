// A/B of one feature on one build: drains and a chain, alternating on/off.
//   npm run build && node bench/features.js --feature pipelining|handoff|prefetch [--repeats 5] [--database-url URL]
const path = require("node:path");
const root = path.resolve(__dirname, "..");
const { arg, median, scratchServer } = require("./lib/scratch");
const skein = require(path.join(root, "dist"));
const { poolOf } = require(path.join(root, "dist/db/client"));
const { Fetcher } = require(path.join(root, "dist/worker/fetcher"));
const originalHandoff = Fetcher.prototype.handoffRequest;

function apply(feature, on, prisma) {
  if (feature === "pipelining") poolOf(prisma).options.pipeline = on;
  if (feature === "handoff") Fetcher.prototype.handoffRequest = on ? originalHandoff : () => undefined;
  return feature === "prefetch" ? { prefetch: on ? 100 : 0 } : { prefetch: 100 };
}

async function setup(server, label) {
  const url = await server.database(`abf_${label}_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`);
  await skein.migrate(url);
  return url;
}

async function drain(server, feature, on, jobs, concurrency) {
  const url = await setup(server, "drain");
  const prisma = skein.createPrismaClient(url, { maxConnections: concurrency + 4 });
  const jm = new skein.JobManager(prisma);
  for (let i = 0; i < jobs; i += 1000) await jm.createJobs(Array.from({ length: Math.min(1000, jobs - i) }, () => ({ jobType: "agent", name: "noop" })));
  const extra = apply(feature, on, prisma);
  const worker = new skein.Worker({ prisma, maxConcurrentJobs: concurrency, pollInterval: 1, ...extra });
  worker.addExecutor({ canExecute: () => true, execute: async () => null });
  let done = 0;
  const finished = new Promise((resolve) => worker.on("job:complete", () => ++done === jobs && resolve()));
  const t0 = process.hrtime.bigint();
  await worker.start();
  await finished;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await worker.stop();
  await prisma.$disconnect();
  return jobs / seconds;
}

async function chain(server, feature, on, length) {
  const url = await setup(server, "chain");
  const prisma = skein.createPrismaClient(url, { maxConnections: 8 });
  const jm = new skein.JobManager(prisma);
  await jm.createJobs(Array.from({ length }, (_, i) => ({ id: `c${i}`, jobType: "agent", name: "step", dependencies: i === 0 ? [] : [`c${i - 1}`] })));
  const extra = apply(feature, on, prisma);
  const worker = new skein.Worker({ prisma, maxConcurrentJobs: 4, pollInterval: 1, ...extra });
  worker.addExecutor({ canExecute: () => true, execute: async () => null });
  const finished = new Promise((resolve) => worker.on("job:complete", (job) => job.id === `c${length - 1}` && resolve()));
  const t0 = process.hrtime.bigint();
  await worker.start();
  await finished;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  await worker.stop();
  await prisma.$disconnect();
  return ms / length;
}

(async () => {
  const feature = arg("feature");
  const repeats = Number(arg("repeats", "5"));
  const server = await scratchServer(arg("database-url"));
  const cases = [
    ["drain 20k c=10 (jobs/s)", (on) => drain(server, feature, on, 20_000, 10)],
    ["drain 20k c=50 (jobs/s)", (on) => drain(server, feature, on, 20_000, 50)],
    ["chain 300 step (ms)", (on) => chain(server, feature, on, 300)],
  ];
  try {
    for (const [name, run] of cases) {
      const results = { on: [], off: [] };
      for (let r = 0; r < repeats; r++) {
        for (const side of r % 2 === 0 ? ["on", "off"] : ["off", "on"]) results[side].push(await run(side === "on"));
      }
      const on = median(results.on), off = median(results.off);
      console.log(`${feature} | ${name} | on ${on.toFixed(2)} [${results.on.map((x) => x.toFixed(1)).join(", ")}] | off ${off.toFixed(2)} [${results.off.map((x) => x.toFixed(1)).join(", ")}] | on/off ${(on / off).toFixed(3)}`);
    }
  } finally {
    await server.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
