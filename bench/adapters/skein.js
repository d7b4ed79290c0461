"use strict";
// Skein, from the built package in ../../dist (run `npm run build` first), or
// from the run's private copy of it (lib/snapshot.js). Two variants share the
// producer, the schema and the databases: `skein` is tuned (prefetch 100, the
// counterpart of graphile-worker's localQueue of 100), `skein-defaults` is a
// Worker with nothing but its concurrency set.
const { distDir } = require("../lib/snapshot");

const lib = () => require(distDir());
/** The schema Skein's tables live in (the package's default; older builds kept them in `public`). */
const schema = () => lib().DEFAULT_SCHEMA ?? "public";

// BENCH_SKEIN_PREFETCH sets the tuned variant's prefetch (default 100).
const TUNED_PREFETCH = Number(process.env.BENCH_SKEIN_PREFETCH ?? 100);

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

/**
 * A Skein adapter. `prefetch` undefined: the Worker's own default (the option
 * is not passed at all).
 */
function makeSkein({ name, label, prefetch, kinds }) {
  return {
    name,
    label,
    // Databases (templates, backlogs) are shared with every variant of the same `family`.
    family: "skein",
    kinds,
    version: () => require(`${distDir()}/../package.json`).version,
    supportsDependencies: true,
    settings: {
      worker:
        prefetch === undefined
          ? "new Worker({ prisma, maxConcurrentJobs: <c> }): every other option at its default (prefetch 0, pollInterval 5 s, staleTimeout 60 s, maintenance on)"
          : `new Worker({ prisma, maxConcurrentJobs: <c>, prefetch: ${prefetch} }) (pollInterval 5 s, staleTimeout 60 s: defaults; prefetch is the counterpart of graphile-worker's localQueue size; BENCH_SKEIN_PREFETCH changes it)`,
      executor: "one executor { canExecute: () => true, execute: async () => null }",
      client: "createPrismaClient(url) (pool of 10 connections, the default)",
      history: "archiving always on (finished jobs move to job_history in the completing transaction)",
    },

    async install(url) {
      await lib().migrate(url);
    },

    /** SQL returning the ids among $1 that are not finished yet. */
    remainingQuery(ids) {
      return { text: `SELECT id FROM "${schema()}".jobs WHERE id = ANY($1::text[])`, values: [ids] };
    },

    /** The tables the soak case watches: the queue, the history, and the readiness index (by name). */
    tables() {
      return { queue: `"${schema()}".jobs`, history: `"${schema()}".job_history`, readyIndex: /ready/ };
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
      const options = { prisma, maxConcurrentJobs: concurrency };
      if (prefetch !== undefined) options.prefetch = prefetch;
      const worker = new Worker(options);
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
}

module.exports = {
  skein: makeSkein({ name: "skein", label: "Skein", prefetch: TUNED_PREFETCH }),
  // The defaults only differ from the tuned variant in the worker: no enqueue, latency or dependency cases.
  skeinDefaults: makeSkein({ name: "skein-defaults", label: "Skein (defaults)", prefetch: undefined, kinds: ["drain", "scale", "soak"] }),
  TUNED_PREFETCH,
};
