"use strict";
// A benchmark child process: the producer or one worker process of one
// library, driven over IPC by run.js (see lib/procs.js). Timestamps are
// performance.timeOrigin + performance.now(), comparable across processes.
const { performance } = require("node:perf_hooks");
const { setTimeout: sleep } = require("node:timers/promises");
const { setInterval, clearInterval } = require("node:timers");
const adapters = require("./adapters");
const graphs = require("./lib/graphs");

const now = () => performance.timeOrigin + performance.now();
const label = process.argv[2] ?? "child";

let adapter;
let producer;
let worker;
const stats = { executed: 0, firstStart: null, lastEnd: null, record: "none", times: new Map(), latencies: [] };
let progressTimer;
// The steady producer's counts: jobs whose call has started (issued), and whose call has returned (count).
const steadyState = { issued: 0, count: 0, errors: 0 };

function sendProgress() {
  progressTimer = undefined;
  if (process.connected) process.send({ event: "progress", executed: stats.executed, firstStart: stats.firstStart });
}

function onStart(key, payload) {
  const t = now();
  if (stats.firstStart === null) stats.firstStart = t;
  if (stats.record === "times") stats.times.set(String(key), [t, 0]);
  else if (stats.record === "latency" && payload && typeof payload.t === "number" && !payload.w) stats.latencies.push(t - payload.t);
}

function onEnd(key) {
  const t = now();
  stats.executed++;
  stats.lastEnd = t;
  if (stats.record === "times") {
    const entry = stats.times.get(String(key));
    if (entry) entry[1] = t;
  }
  progressTimer ??= setTimeout(sendProgress, 5);
}

function plainSpecs(n, payload) {
  return Array.from({ length: n }, () => ({ payload: payload ?? {} }));
}

const commands = {
  async open({ lib, url, role, pool = 10, concurrency = 10, record = "none" }) {
    adapter = adapters[lib];
    if (!adapter) throw new Error(`unknown library ${lib}`);
    stats.record = record;
    if (role === "producer") producer = await adapter.openProducer(url, { pool });
    else worker = await adapter.openWorker(url, { concurrency, pool, onStart, onEnd });
    return { pid: process.pid };
  },

  /** One job per call from `clients` concurrent loops. */
  async "enqueue.single"({ clients, total, maxSeconds }) {
    const deadline = now() + maxSeconds * 1000;
    let next = 0;
    let done = 0;
    const t0 = now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (next < total && now() < deadline) {
          next++;
          await producer.addOne({});
          done++;
        }
      }),
    );
    return { count: done, ms: now() - t0, timedOut: done < total };
  },

  /** Bulk calls of `batch` jobs, one after another; with `deps`, jobs of a call depend on earlier ones of it. */
  async "enqueue.bulk"({ batch, total, deps, maxSeconds }) {
    const calls = [];
    for (let made = 0, i = 0; made < total; i++) {
      const n = Math.min(batch, total - made);
      calls.push(deps ? graphs.bulkWithDeps(`b${i}-`, n, 1000 + i) : plainSpecs(n));
      made += n;
    }
    const deadline = now() + maxSeconds * 1000;
    let done = 0;
    const t0 = now();
    for (const specs of calls) {
      if (now() > deadline) break;
      if (deps) await producer.addGraph(specs);
      else await producer.addMany(specs);
      done += specs.length;
    }
    return { count: done, ms: now() - t0, timedOut: done < total };
  },

  /** Inserts `n` ready no-op jobs in bulk calls of `chunk`; returns their ids. */
  async prefill({ n, chunk = 10_000 }) {
    const ids = [];
    const t0 = now();
    for (let made = 0; made < n; made += chunk) ids.push(...(await producer.addMany(plainSpecs(Math.min(chunk, n - made)))));
    return { ids: ids.map(String), ms: now() - t0 };
  },

  /** Creates one dependency graph (see lib/graphs.js) in one call; returns the ids. */
  async graph({ kind, args }) {
    const specs = graphs[kind](...args);
    const t0 = now();
    const ids = await producer.addGraph(specs);
    return { ids: ids.map(String), count: specs.length, edges: specs.reduce((s, x) => s + (x.deps ? x.deps.length : 0), 0), ms: now() - t0 };
  },

  /** Jobs that will not run during the benchmark: half blocked on a gate job (if supported), half scheduled a day ahead. */
  async backlog({ n, chunk = 10_000, deps, maxSeconds }) {
    const deadline = now() + maxSeconds * 1000;
    const t0 = now();
    let made = 0;
    for (const { specs, withDeps } of graphs.backlogChunks(n, { chunk, deps })) {
      if (now() > deadline) throw new Error(`backlog: only ${made} of ${n} jobs created in ${maxSeconds} s`);
      if (withDeps) await producer.addGraph(specs);
      else await producer.addMany(specs);
      made += specs.length;
    }
    return { count: made, ms: now() - t0 };
  },

  /** createJob at a steady `rate` per second: `warmupSeconds` unrecorded, then `seconds` recorded. */
  async latency({ rate, seconds, warmupSeconds }) {
    const interval = 1000 / rate;
    const warm = Math.round(rate * warmupSeconds);
    const total = warm + Math.round(rate * seconds);
    const inflight = new Set();
    let errors = 0;
    let maxLag = 0;
    let maxInflight = 0;
    const t0 = now() + 20;
    for (let i = 0; i < total; i++) {
      const due = t0 + i * interval;
      const wait = due - now();
      if (wait > 0) await sleep(wait);
      maxLag = Math.max(maxLag, now() - due);
      if (inflight.size > 2000) throw new Error("latency: more than 2000 createJob calls in flight; the library cannot keep up");
      const payload = { t: now(), w: i < warm ? 1 : 0 };
      const p = producer
        .addOne(payload)
        .catch(() => errors++)
        .finally(() => inflight.delete(p));
      inflight.add(p);
      maxInflight = Math.max(maxInflight, inflight.size);
    }
    await Promise.all(inflight);
    return { sent: total, warm, errors, maxLagMs: maxLag, maxInflight };
  },

  /**
   * Creates jobs at a steady `rate` per second for `seconds`, `batch` per call
   * (addOne when 1, else addMany), on a fixed schedule that does not wait for
   * the previous call (at most `maxInflight` calls in flight; beyond that it
   * waits, and falls behind). Each job's payload carries the call's start time
   * (`t`) for the workers' latency. Sends { event: "produced", count, errors,
   * lagMs } every second (lagMs: how late the latest calls started); returns the
   * totals. The `produced` command reads the counts meanwhile.
   */
  async steady({ rate, batch = 1, seconds, maxInflight = 200 }) {
    const interval = (1000 * batch) / rate;
    const calls = Math.round((rate * seconds) / batch);
    const inflight = new Set();
    const state = steadyState;
    let maxLag = 0;
    let lagSinceReport = 0;
    const t0 = now() + 20;
    const report = setInterval(() => {
      if (process.connected) process.send({ event: "produced", count: state.count, errors: state.errors, lagMs: lagSinceReport });
      lagSinceReport = 0;
    }, 1000);
    try {
      for (let i = 0; i < calls; i++) {
        const due = t0 + i * interval;
        const wait = due - now();
        if (wait > 0) await sleep(wait);
        while (inflight.size >= maxInflight) await Promise.race(inflight);
        const lag = Math.max(0, now() - due);
        maxLag = Math.max(maxLag, lag);
        lagSinceReport = Math.max(lagSinceReport, lag);
        const payload = { t: now() };
        state.issued += batch;
        const p = (batch === 1 ? producer.addOne(payload) : producer.addMany(plainSpecs(batch, payload)))
          .then(() => {
            state.count += batch;
          })
          .catch(() => {
            state.errors += batch;
          })
          .finally(() => inflight.delete(p));
        inflight.add(p);
      }
      await Promise.all(inflight);
    } finally {
      clearInterval(report);
    }
    if (process.connected) process.send({ event: "produced", count: state.count, errors: state.errors, lagMs: lagSinceReport });
    return { count: state.count, errors: state.errors, ms: now() - t0, maxLagMs: maxLag };
  },

  /** The steady producer's counts so far (answered while `steady` runs). */
  async produced() {
    return { ...steadyState };
  },

  /** Jobs executed so far, the worker's CPU since start, and the latencies recorded since the last collect (which it clears). */
  async collect() {
    const latencies = stats.latencies;
    stats.latencies = [];
    const cpu = stats.cpuAtStart ? process.cpuUsage(stats.cpuAtStart) : { user: 0, system: 0 };
    return { executed: stats.executed, latencies, cpuMs: (cpu.user + cpu.system) / 1000, at: now() };
  },

  async start() {
    stats.cpuAtStart = process.cpuUsage();
    await worker.start();
    return { at: now() };
  },

  async stop() {
    await Promise.race([worker.stop(), sleep(30_000)]);
    worker = undefined;
    const cpu = process.cpuUsage(stats.cpuAtStart);
    return {
      cpuMs: (cpu.user + cpu.system) / 1000,
      executed: stats.executed,
      firstStart: stats.firstStart,
      lastEnd: stats.lastEnd,
      maxRssMB: process.resourceUsage().maxRSS / 1024,
      times: stats.record === "times" ? [...stats.times].map(([k, [s, e]]) => [k, s, e]) : undefined,
      latencies: stats.record === "latency" ? stats.latencies : undefined,
    };
  },

  async exit() {
    if (worker) await Promise.race([worker.stop(), sleep(10_000)]).catch(() => undefined);
    if (producer) await Promise.race([producer.close(), sleep(10_000)]).catch(() => undefined);
    process.exit(0);
  },
};

process.on("message", (msg) => {
  if (!msg || typeof msg.cmd !== "string") return;
  const handler = commands[msg.cmd];
  Promise.resolve()
    .then(() => {
      if (!handler) throw new Error(`unknown command ${msg.cmd}`);
      return handler(msg.args ?? {});
    })
    .then(
      (result) => process.connected && msg.id && process.send({ id: msg.id, ok: true, result }),
      (error) => process.connected && msg.id && process.send({ id: msg.id, ok: false, error: error && error.stack ? error.stack : String(error) }),
    );
});

// The parent went away: do not linger.
process.on("disconnect", () => process.exit(1));
process.on("unhandledRejection", (error) => {
  process.stderr.write(`[${label}] unhandled rejection: ${error && error.stack ? error.stack : error}\n`);
});
