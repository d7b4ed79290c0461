"use strict";
// The workloads of issue 4, as cases. Each case runs once per library per
// repeat, on a fresh database, and returns a flat object of numbers; `metrics`
// says which of them go into the table.
const { setTimeout: sleep } = require("node:timers/promises");
const { percentile } = require("./stats");
const { soak } = require("./soak");

const rate = (count, ms) => (ms > 0 ? (count * 1000) / ms : null);
const count = (n) => n.toLocaleString("en-US");
const short = (n) => (n % 1_000_000 === 0 ? `${n / 1_000_000}M` : n % 1000 === 0 ? `${n / 1000}k` : String(n));

// ---------------------------------------------------------------- enqueue
function enqueueSingle(n) {
  const total = n(10_000, 200);
  return {
    id: "enqueue.single",
    kind: "enqueue",
    title: `enqueue one at a time, 8 clients (${count(total)} jobs)`,
    metrics: [{ key: "rate", label: "jobs/s", unit: "jobs/s", better: "higher" }],
    async run(h, lib) {
      const db = await h.freshDatabase(lib, "enqueue_single");
      try {
        const r = await h.withProducer(lib, db.url, (p) => p.call("enqueue.single", { clients: 8, total, maxSeconds: h.opts.timeout }, h.timeoutMs + 30_000));
        return { rate: rate(r.count, r.ms), count: r.count, ms: r.ms, timedOut: r.timedOut };
      } finally {
        await db.drop();
      }
    },
  };
}

function enqueueBulk(scaled, { id, batch: fullBatch, total, deps }) {
  const n = scaled(total, 100);
  const batch = Math.min(fullBatch, n);
  const what = `enqueue bulk${deps ? " with dependencies (2 each, within the call)" : ""}`;
  const title = batch === n ? `${what}, ${count(n)} in one call` : `${what}, ${count(batch)} per call (${count(n)} jobs)`;
  return {
    id,
    kind: "enqueue",
    title,
    needsDependencies: deps,
    metrics: [{ key: "rate", label: "jobs/s", unit: "jobs/s", better: "higher" }],
    async run(h, lib) {
      const db = await h.freshDatabase(lib, id);
      try {
        const r = await h.withProducer(lib, db.url, (p) =>
          p.call("enqueue.bulk", { batch, total: n, deps, maxSeconds: h.opts.timeout }, h.timeoutMs + 30_000),
        );
        return { rate: rate(r.count, r.ms), count: r.count, ms: r.ms, timedOut: r.timedOut };
      } finally {
        await db.drop();
      }
    },
  };
}

// ---------------------------------------------------------------- drain
/** The workers' and the server's CPU per job (µs) of a `runWorkers` result; the server's is null when unknown. */
function cpuPerJob(w, n) {
  return { workerCpuUsPerJob: (w.workerCpuMs * 1000) / n, serverCpuUsPerJob: w.serverCpuMs === null ? null : (w.serverCpuMs * 1000) / n };
}

const CPU_METRICS = [
  { key: "workerCpuUsPerJob", label: "worker CPU µs/job", unit: "us", better: "lower" },
  { key: "serverCpuUsPerJob", label: "server CPU µs/job", unit: "us", better: "lower" },
];

function drain(scaled, total, procs, concurrency) {
  const k = short(total);
  const n = scaled(total, 200);
  return {
    id: `drain.${k}.${procs}x${concurrency}`,
    kind: "drain",
    title: `drain ${count(n)} no-op jobs, ${procs === 1 ? "1 worker process" : `${procs} worker processes`} × c=${concurrency}`,
    metrics: [{ key: "rate", label: "jobs/s", unit: "jobs/s", better: "higher" }, ...CPU_METRICS],
    async run(h, lib) {
      const db = await h.freshDatabase(lib, `drain_${k}_${procs}x${concurrency}`);
      try {
        const { ids, ms: prefillMs } = await h.withProducer(lib, db.url, (p) => p.call("prefill", { n }, h.timeoutMs));
        const w = await h.runWorkers({ lib, url: db.url, procs, concurrency, expected: n, ids });
        return {
          rate: w.timedOut ? null : rate(n, w.seconds * 1000),
          seconds: w.seconds,
          executed: w.executed,
          maxRssMB: w.maxRssMB,
          ...cpuPerJob(w, n),
          prefillRate: rate(n, prefillMs),
          timedOut: w.timedOut,
        };
      } finally {
        await db.drop();
      }
    },
  };
}

// ---------------------------------------------------------------- latency
function latency() {
  return {
    id: "latency",
    kind: "latency",
    title: "latency createJob → executor start at 200 jobs/s (1 worker, c=10)",
    metrics: [
      { key: "p50", label: "p50 ms", unit: "ms", better: "lower" },
      { key: "p95", label: "p95 ms", unit: "ms", better: "lower" },
      { key: "p99", label: "p99 ms", unit: "ms", better: "lower" },
    ],
    async run(h, lib) {
      const seconds = Math.max(2, Math.round(10 * Math.min(1, h.opts.scale)));
      const db = await h.freshDatabase(lib, "latency");
      const producer = await h.producer(lib, db.url);
      try {
        const w = await h.runWorkers({
          lib,
          url: db.url,
          concurrency: 10,
          record: "latency",
          during: async () => {
            await sleep(1000); // the worker is idle and listening
            return producer.call("latency", { rate: 200, seconds, warmupSeconds: 1 }, (seconds + 60) * 1000);
          },
          expected: (sent) => sent.sent - sent.errors,
        });
        const lat = w.children[0].latencies;
        return {
          p50: percentile(lat, 50),
          p95: percentile(lat, 95),
          p99: percentile(lat, 99),
          max: percentile(lat, 100),
          samples: lat.length,
          errors: w.during.errors,
          producerMaxLagMs: w.during.maxLagMs,
          timedOut: w.timedOut,
        };
      } finally {
        await producer.close();
        await db.drop();
      }
    },
  };
}

// ---------------------------------------------------------------- dependencies
async function runGraph(h, lib, { tag, kind, args, concurrency }) {
  const db = await h.freshDatabase(lib, tag);
  try {
    const created = await h.withProducer(lib, db.url, (p) => p.call("graph", { kind, args }, h.timeoutMs));
    const w = await h.runWorkers({ lib, url: db.url, concurrency, expected: created.count, ids: created.ids, record: "times" });
    const times = new Map(w.children[0].times.map(([key, s, e]) => [key, { s, e }]));
    return { created, w, times, rate: w.timedOut ? null : rate(created.count, w.seconds * 1000), createRate: rate(created.count, created.ms) };
  } finally {
    await db.drop();
  }
}

function depsChains(n) {
  const chains = 100;
  const length = n(100, 5);
  return {
    id: "deps.chains",
    kind: "deps",
    title: `${chains} chains of ${length} jobs (1 worker, c=100)`,
    needsDependencies: true,
    metrics: [
      { key: "stepP50", label: "step p50 ms", unit: "ms", better: "lower" },
      { key: "stepP99", label: "step p99 ms", unit: "ms", better: "lower" },
      { key: "seconds", label: "total s", unit: "s", better: "lower" },
    ],
    async run(h, lib) {
      const g = await runGraph(h, lib, { tag: "chains", kind: "chains", args: [chains, length], concurrency: 100 });
      const steps = [];
      let finishedChains = 0;
      for (let c = 0; c < chains; c++) {
        let complete = true;
        for (let s = 1; s < length; s++) {
          const prev = g.times.get(`c${c}.${s - 1}`);
          const next = g.times.get(`c${c}.${s}`);
          if (prev && next && prev.e) steps.push(next.s - prev.e);
          else complete = false;
        }
        if (complete && g.times.has(`c${c}.0`)) finishedChains++;
      }
      return {
        stepP50: percentile(steps, 50),
        stepP95: percentile(steps, 95),
        stepP99: percentile(steps, 99),
        steps: steps.length,
        seconds: g.w.timedOut ? null : g.w.seconds,
        rate: g.rate,
        createRate: g.createRate,
        finishedChains,
        executed: g.w.executed,
        timedOut: g.w.timedOut,
      };
    },
  };
}

function depsFanIn(scaled) {
  const n = scaled(10_000, 100);
  return {
    id: "deps.fanin",
    kind: "deps",
    title: `fan-in: 1 job waiting on ${count(n)} (1 worker, c=50)`,
    needsDependencies: true,
    metrics: [
      { key: "resolveMs", label: "last dep done → dependent starts, ms", unit: "ms", better: "lower" },
      { key: "rate", label: "jobs/s", unit: "jobs/s", better: "higher" },
    ],
    async run(h, lib) {
      const g = await runGraph(h, lib, { tag: "fanin", kind: "fanIn", args: [n], concurrency: 50 });
      let lastParentEnd = 0;
      for (let i = 0; i < n; i++) lastParentEnd = Math.max(lastParentEnd, g.times.get(`p${i}`)?.e ?? 0);
      const sink = g.times.get("sink");
      return {
        resolveMs: sink ? sink.s - lastParentEnd : null,
        rate: g.rate,
        createRate: g.createRate,
        seconds: g.w.seconds,
        executed: g.w.executed,
        timedOut: g.w.timedOut,
      };
    },
  };
}

function depsFanOut(scaled) {
  const n = scaled(10_000, 100);
  return {
    id: "deps.fanout",
    kind: "deps",
    title: `fan-out: ${count(n)} jobs waiting on 1 (1 worker, c=50)`,
    needsDependencies: true,
    metrics: [
      { key: "resolveMs", label: "dep done → first dependent starts, ms", unit: "ms", better: "lower" },
      { key: "rate", label: "jobs/s", unit: "jobs/s", better: "higher" },
    ],
    async run(h, lib) {
      const g = await runGraph(h, lib, { tag: "fanout", kind: "fanOut", args: [n], concurrency: 50 });
      const root = g.times.get("root");
      let first = Infinity;
      let last = 0;
      for (let i = 0; i < n; i++) {
        const t = g.times.get(`f${i}`);
        if (t) {
          first = Math.min(first, t.s);
          last = Math.max(last, t.s);
        }
      }
      return {
        resolveMs: root && first !== Infinity ? first - root.e : null,
        allStartedMs: root && last ? last - root.e : null,
        rate: g.rate,
        createRate: g.createRate,
        seconds: g.w.seconds,
        executed: g.w.executed,
        timedOut: g.w.timedOut,
      };
    },
  };
}

function depsDag(scaled) {
  const n = scaled(50_000, 500);
  return {
    id: "deps.dag",
    kind: "deps",
    title: `random DAG of ${count(n)} jobs, 2–5 deps each (1 worker, c=50)`,
    needsDependencies: true,
    metrics: [
      { key: "createRate", label: "create jobs/s (one call)", unit: "jobs/s", better: "higher" },
      { key: "rate", label: "run jobs/s", unit: "jobs/s", better: "higher" },
    ],
    async run(h, lib) {
      const g = await runGraph(h, lib, { tag: "dag", kind: "dag", args: [n], concurrency: 50 });
      return { rate: g.rate, createRate: g.createRate, edges: g.created.edges, seconds: g.w.seconds, executed: g.w.executed, timedOut: g.w.timedOut };
    },
  };
}

// ---------------------------------------------------------------- scale
async function drainReady(h, lib, url, n) {
  const { ids } = await h.withProducer(lib, url, (p) => p.call("prefill", { n }, h.timeoutMs));
  const w = await h.runWorkers({ lib, url, concurrency: 10, expected: n, ids });
  return {
    rate: w.timedOut ? null : rate(n, w.seconds * 1000),
    seconds: w.seconds,
    ...cpuPerJob(w, n),
    timedOut: w.timedOut,
  };
}

/**
 * `rounds` drains of `ready` jobs, one after another in the same database
 * (each with a new worker process). The first is the fresh database's; the
 * last comes after rounds-1 others have left their dead rows and index
 * entries behind (too close together for autovacuum, which visits a database
 * about once a minute, to come in between every time).
 */
async function drainRounds(h, lib, url, ready, rounds) {
  const runs = [];
  for (let r = 0; r < rounds; r++) runs.push(await drainReady(h, lib, url, ready));
  const first = runs[0];
  const last = runs[runs.length - 1];
  return {
    rate: first.rate,
    repeatedRate: last.rate,
    rounds: runs.map((r) => r.rate),
    workerCpuUsPerJob: first.workerCpuUsPerJob,
    serverCpuUsPerJob: first.serverCpuUsPerJob,
    repeatedWorkerCpuUsPerJob: last.workerCpuUsPerJob,
    repeatedServerCpuUsPerJob: last.serverCpuUsPerJob,
    timedOut: runs.some((r) => r.timedOut),
  };
}

function scaleMetrics(rounds) {
  return [
    { key: "rate", label: "fresh database, jobs/s", unit: "jobs/s", better: "higher" },
    { key: "repeatedRate", label: `after ${rounds - 1} earlier drains in the same database, jobs/s`, unit: "jobs/s", better: "higher" },
  ];
}

function scaleSmall(scaled, opts) {
  const ready = scaled(10_000, 200);
  const rounds = opts.backlogRounds;
  return {
    id: "scale.10k",
    kind: "scale",
    title: `scale: drain ${count(ready)} ready, nothing else pending (1 worker, c=10), ${rounds} times in one database`,
    metrics: scaleMetrics(rounds),
    async run(h, lib) {
      const db = await h.freshDatabase(lib, "scale_small");
      try {
        return await drainRounds(h, lib, db.url, ready, rounds);
      } finally {
        await db.drop();
      }
    },
  };
}

function scaleLarge(scaled, opts) {
  const ready = scaled(10_000, 200);
  const pending = scaled(1_000_000, 1000);
  const rounds = opts.backlogRounds;
  return {
    id: "scale.1m",
    kind: "scale",
    pending,
    title: `scale: the same with ${count(pending)} more pending (blocked or scheduled later)`,
    metrics: scaleMetrics(rounds),
    /** Each run gets its own database, cloned from a backlog built once per library family. */
    async run(h, lib) {
      const backlog = await h.backlogTemplate(lib, pending);
      const db = await h.freshDatabase(lib, "scale_large", { from: backlog.name });
      try {
        const r = await drainRounds(h, lib, db.url, ready, rounds);
        return { ...r, backlog: backlog.count, backlogRate: rate(backlog.count, backlog.ms), cloneMs: db.cloneMs };
      } finally {
        await db.drop();
      }
    },
  };
}

/** The cases, with job counts multiplied by `opts.scale` (never below a small minimum). */
function allCases(opts) {
  const n = (base, min = 1) => Math.max(min, Math.round(base * opts.scale));
  return [
    enqueueSingle(n),
    enqueueBulk(n, { id: "enqueue.bulk1k", batch: 1000, total: 20_000, deps: false }),
    enqueueBulk(n, { id: "enqueue.bulk1k-deps", batch: 1000, total: 20_000, deps: true }),
    enqueueBulk(n, { id: "enqueue.bulk100k", batch: 100_000, total: 100_000, deps: false }),
    drain(n, 20_000, 1, 10),
    drain(n, 20_000, 1, 50),
    drain(n, 20_000, 4, 10),
    drain(n, 100_000, 1, 10),
    drain(n, 100_000, 1, 50),
    drain(n, 100_000, 4, 10),
    latency(),
    depsChains(n),
    depsFanIn(n),
    depsFanOut(n),
    depsDag(n),
    scaleSmall(n, opts),
    scaleLarge(n, opts),
    soak(n, opts),
  ];
}

module.exports = { allCases };
