"use strict";
// graphile-worker at its best documented configuration for throughput:
// a local queue of 100 jobs and completions batched with no delay
// (https://worker.graphile.org/docs/performance#batching).

const fs = require("node:fs");
const path = require("node:path");

const lib = () => require("graphile-worker");

function silentLogger() {
  const { Logger } = lib();
  return new Logger(() => (level, message) => {
    if (level === "error") process.stderr.write(`[graphile-worker] ${message}\n`);
  });
}

const PRESET = { worker: { localQueue: { size: 100 }, completeJobBatchDelay: 0 } };

module.exports = {
  name: "graphile",
  label: "graphile-worker",
  version: () => JSON.parse(fs.readFileSync(path.join(path.dirname(require.resolve("graphile-worker")), "..", "package.json"), "utf8")).version,
  supportsDependencies: false,
  settings: {
    worker:
      "run({ concurrency: <c>, maxPoolSize: 10, noHandleSignals: true, taskList: { noop }, preset: { worker: { localQueue: { size: 100 }, completeJobBatchDelay: 0 } } }) (pollInterval 2 s: default)",
    client: "makeWorkerUtils({ connectionString, maxPoolSize: 10 }): addJob / addJobs",
    history: "none (completed jobs are deleted)",
  },

  async install(url) {
    const utils = await lib().makeWorkerUtils({ connectionString: url, logger: silentLogger() });
    try {
      await utils.migrate();
    } finally {
      await utils.release();
    }
  },

  remainingQuery(ids) {
    return { text: "SELECT id FROM graphile_worker._private_jobs WHERE id = ANY($1::bigint[])", values: [ids] };
  },

  tables() {
    return { queue: "graphile_worker._private_jobs" };
  },

  async openProducer(url, { pool }) {
    const utils = await lib().makeWorkerUtils({ connectionString: url, maxPoolSize: pool, logger: silentLogger() });
    const spec = (s) => ({ identifier: "noop", payload: s.payload ?? {}, runAt: s.runAt });
    return {
      async addOne(payload) {
        return (await utils.addJob("noop", payload)).id;
      },
      async addMany(specs) {
        return (await utils.addJobs(specs.map(spec))).map((j) => j.id);
      },
      async addGraph() {
        throw new Error("graphile-worker has no job dependencies");
      },
      async close() {
        await utils.release();
      },
    };
  },

  async openWorker(url, { concurrency, pool, onStart, onEnd }) {
    let runner;
    return {
      async start() {
        runner = await lib().run({
          connectionString: url,
          concurrency,
          maxPoolSize: pool,
          noHandleSignals: true,
          logger: silentLogger(),
          preset: PRESET,
          taskList: {
            noop: async (payload, helpers) => {
              const key = payload && payload.k !== undefined ? payload.k : helpers.job.id;
              onStart(key, payload);
              onEnd(key);
            },
          },
        });
      },
      async stop() {
        if (runner) await runner.stop();
      },
    };
  },
};
