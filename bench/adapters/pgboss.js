"use strict";
// pg-boss 12 at its best documented configuration for throughput and latency:
// LISTEN/NOTIFY on (instance `useListenNotify`, queue `notify: true`), workers
// fetching `batchSize` = concurrency with `burstWhenBatchFull`, and flow
// (dependency) resolution and polling at their shortest allowed intervals
// (1 s and 0.5 s): the flow resolver sends no NOTIFY when it unblocks jobs,
// so with the default backstop poll of a notify queue (30 s) a dependent
// waits up to 30 s.
const { randomUUID } = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");

const lib = () => require("pg-boss");
const QUEUE = "noop";

function onEvents(boss) {
  boss.on("error", (error) => process.stderr.write(`[pg-boss] error: ${error && error.message}\n`));
  boss.on("warning", (warning) => {
    if (warning && warning.type !== "slow_query") process.stderr.write(`[pg-boss] warning: ${warning.type} ${warning.message ?? ""}\n`);
  });
  return boss;
}

module.exports = {
  name: "pgboss",
  label: "pg-boss",
  version: () => JSON.parse(fs.readFileSync(path.join(path.dirname(require.resolve("pg-boss")), "..", "package.json"), "utf8")).version,
  supportsDependencies: true,
  settings: {
    worker:
      "new PgBoss({ connectionString, max: 10, useListenNotify: true, flowIntervalSeconds: 1 }); work('noop', { batchSize: <c>, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5, notifyPollingIntervalSeconds: 0.5 }, handler) (localConcurrency 1: default)",
    client: "new PgBoss({ connectionString, max: 10, supervise: false, schedule: false }): send / insert / flow",
    queue: "createQueue('noop', { notify: true }) (policy standard, not partitioned: defaults)",
    history: "completed jobs stay in the job table (deleteAfterSeconds 7 days: default)",
  },

  async install(url) {
    const { PgBoss } = lib();
    const boss = onEvents(new PgBoss({ connectionString: url, supervise: false, schedule: false }));
    await boss.start();
    try {
      await boss.createQueue(QUEUE, { notify: true });
    } finally {
      await boss.stop({ graceful: false, timeout: 5000 });
    }
  },

  remainingQuery(ids) {
    return {
      text: `SELECT id FROM pgboss.job WHERE name = '${QUEUE}' AND id = ANY($1::uuid[]) AND state < 'completed'`,
      values: [ids],
    };
  },

  tables() {
    return { queue: "pgboss.job" };
  },

  async openProducer(url, { pool }) {
    const { PgBoss } = lib();
    const boss = onEvents(new PgBoss({ connectionString: url, max: pool, supervise: false, schedule: false }));
    await boss.start();
    return {
      async addOne(payload) {
        return boss.send(QUEUE, payload);
      },
      async addMany(specs) {
        const jobs = specs.map((s) => ({ id: randomUUID(), data: s.payload ?? {}, startAfter: s.runAt }));
        await boss.insert(QUEUE, jobs);
        return jobs.map((j) => j.id);
      },
      async addGraph(specs) {
        const refs = await boss.flow(
          specs.map((s) => ({
            ref: s.key,
            name: QUEUE,
            data: { ...(s.payload ?? {}), k: s.key },
            dependsOn: s.deps && s.deps.length > 0 ? s.deps : undefined,
            options: s.runAt ? { startAfter: s.runAt } : undefined,
          })),
        );
        return specs.map((s) => refs[s.key]);
      },
      async close() {
        await boss.stop({ graceful: false, timeout: 5000 });
      },
    };
  },

  async openWorker(url, { concurrency, pool, onStart, onEnd }) {
    const { PgBoss } = lib();
    const boss = onEvents(new PgBoss({ connectionString: url, max: pool, useListenNotify: true, flowIntervalSeconds: 1 }));
    await boss.start();
    return {
      async start() {
        const options = { batchSize: concurrency, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5, notifyPollingIntervalSeconds: 0.5 };
        await boss.work(QUEUE, options, async (jobs) => {
          await Promise.all(
            jobs.map(async (job) => {
              const key = job.data && job.data.k !== undefined ? job.data.k : job.id;
              onStart(key, job.data);
              onEnd(key);
            }),
          );
        });
      },
      async stop() {
        await boss.stop({ graceful: true, timeout: 10000 });
      },
    };
  },
};
