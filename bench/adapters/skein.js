"use strict";
// Skein, from the built package in ../../dist (run `npm run build` first), or
// from the run's private copy of it (lib/snapshot.js).
const { distDir } = require("../lib/snapshot");

const lib = () => require(distDir());

// Jobs a worker holds claimed beyond its free slots: 100 matches graphile-worker's localQueue size in
// this suite; BENCH_SKEIN_PREFETCH=0 measures Skein's default (claims sized to free slots only).
const PREFETCH = Number(process.env.BENCH_SKEIN_PREFETCH ?? 100);

function toInput(spec) {
  return {
    id: spec.key,
    jobType: "agent",
    name: "noop",
    payload: spec.payload ?? {},
    dependencies: spec.deps && spec.deps.length > 0 ? spec.deps : undefined,
    runAt: spec.runAt,
  };
}

module.exports = {
  name: "skein",
  label: "Skein",
  version: () => require(`${distDir()}/../package.json`).version,
  supportsDependencies: true,
  settings: {
    worker: `new Worker({ prisma, maxConcurrentJobs: <c>, prefetch: ${PREFETCH} }) (pollInterval 5 s, staleTimeout 60 s: defaults; prefetch is the counterpart of graphile-worker's localQueue size, BENCH_SKEIN_PREFETCH=0 for Skein's default), one executor { canExecute: () => true, execute: async () => null }`,
    client: "createPrismaClient(url) (pool of 10 connections, the default)",
    history: "archiving always on (finished jobs move to job_history in the completing transaction)",
  },

  async install(url) {
    await lib().migrate(url);
  },

  /** SQL returning the ids among $1 that are not finished yet. */
  remainingQuery(ids) {
    return { text: "SELECT id FROM jobs WHERE id = ANY($1::text[])", values: [ids] };
  },

  async openProducer(url, { pool }) {
    const { createPrismaClient, JobManager } = lib();
    const prisma = createPrismaClient(url, { maxConnections: pool, applicationName: "bench-producer" });
    const manager = new JobManager(prisma);
    return {
      async addOne(payload) {
        return (await manager.createJob({ jobType: "agent", name: "noop", payload })).id;
      },
      async addMany(specs) {
        return (await manager.createJobs(specs.map(toInput))).map((j) => j.id);
      },
      async addGraph(specs) {
        return (await manager.createJobs(specs.map(toInput))).map((j) => j.id);
      },
      async close() {
        await prisma.$disconnect();
      },
    };
  },

  async openWorker(url, { concurrency, pool, onStart, onEnd }) {
    const { createPrismaClient, Worker } = lib();
    const prisma = createPrismaClient(url, { maxConnections: pool, applicationName: "bench-worker" });
    const worker = new Worker({ prisma, maxConcurrentJobs: concurrency, prefetch: PREFETCH });
    worker.addExecutor({
      name: "noop",
      canExecute: () => true,
      execute: async (job) => {
        onStart(job.id, job.payload);
        onEnd(job.id);
        return null;
      },
    });
    return {
      async start() {
        await worker.start();
      },
      async stop() {
        await worker.stop();
        await prisma.$disconnect();
      },
    };
  },
};
