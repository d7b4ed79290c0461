"use strict";
// What every case needs: a fresh database, a producer process, worker
// processes, and a precise "all jobs finished" time.
const { performance } = require("node:perf_hooks");
const { setTimeout: sleep } = require("node:timers/promises");
const { clearTimeout } = require("node:timers");
const pg = require("pg");
const adapters = require("../adapters");
const { Child } = require("./procs");
const { PREFIX } = require("./server");
const { sum } = require("./stats");

const now = () => performance.timeOrigin + performance.now();
const POOL = 10;

class Harness {
  constructor(server, opts, log) {
    this.server = server;
    this.opts = opts;
    this.log = log;
    this.templates = new Map();
    this.backlogs = new Map();
    this.counter = 0;
  }

  /** Adapters of one family (Skein tuned and with its defaults) share their databases' schema. */
  family(lib) {
    return adapters[lib].family ?? lib;
  }

  /** n scaled by --scale, at least `min`. */
  n(base, min = 1) {
    return Math.max(min, Math.round(base * this.opts.scale));
  }

  get timeoutMs() {
    return this.opts.timeout * 1000;
  }

  /** A template database with the library's schema installed (made once per run and family). */
  async template(lib) {
    const family = this.family(lib);
    if (!this.templates.has(family)) {
      const name = `${PREFIX}${family.replace(/[^a-z0-9]/gi, "_")}_template`;
      const url = await this.server.createDatabase(name);
      await adapters[lib].install(url);
      this.templates.set(family, name);
    }
    return this.templates.get(family);
  }

  /**
   * A template database holding the library's schema and `pending` jobs that
   * cannot run (half blocked on a dependency where the library has them, the
   * rest scheduled a day ahead; lib/graphs.js backlogChunks). Built once per
   * run, family and size, through the library's own bulk insert; the scale
   * and soak cases clone it. Returns { name, count, ms } (the build's time).
   */
  async backlogTemplate(lib, pending) {
    const key = `${this.family(lib)}:${pending}`;
    if (!this.backlogs.has(key)) {
      const build = (async () => {
        const template = await this.template(lib);
        const name = `${PREFIX}${this.family(lib).replace(/[^a-z0-9]/gi, "_")}_backlog_${pending}`;
        const url = await this.server.createDatabase(name, template);
        const timeout = Math.max(this.timeoutMs, pending * 2); // at least 500 jobs/s
        const made = await this.withProducer(lib, url, (p) =>
          p.call("backlog", { n: pending, deps: adapters[lib].supportsDependencies, maxSeconds: timeout / 1000 }, timeout + 30_000),
        );
        this.log(`backlog of ${made.count.toLocaleString("en-US")} jobs for ${this.family(lib)} built in ${(made.ms / 1000).toFixed(1)} s (${Math.round((made.count * 1000) / made.ms)} jobs/s)`);
        return { name, count: made.count, ms: made.ms };
      })();
      this.backlogs.set(key, build);
      build.catch(() => this.backlogs.delete(key));
    }
    return this.backlogs.get(key);
  }

  /**
   * A fresh database for one run, cloned from the library's template, or from
   * `from` (a template database's name; cloned file by file, for large ones).
   */
  async freshDatabase(lib, tag, { from } = {}) {
    const template = from ?? (await this.template(lib));
    const name = `${PREFIX}${lib.replace(/[^a-z0-9]/gi, "_")}_${tag.replace(/[^a-z0-9]/gi, "_").toLowerCase()}_${++this.counter}`;
    const t0 = now();
    const url = await this.server.createDatabase(name, template, { fileCopy: from !== undefined });
    const cloneMs = now() - t0;
    return { name, url, cloneMs, drop: () => (this.opts.keep ? Promise.resolve() : this.server.dropDatabase(name)) };
  }

  /** A producer process connected to `url`. Close it with `child.close()`. */
  async producer(lib, url) {
    const child = new Child(`${lib}-producer`);
    try {
      await child.call("open", { lib, url, role: "producer", pool: POOL });
    } catch (error) {
      child.kill();
      throw error;
    }
    return child;
  }

  /** Runs `fn(producerChild)` with a producer process, closing it afterwards. */
  async withProducer(lib, url, fn) {
    const child = await this.producer(lib, url);
    try {
      return await fn(child);
    } finally {
      await child.close();
    }
  }

  /**
   * Starts `procs` worker processes at `concurrency`, runs `during()` (if
   * any), waits until they have executed `expected` jobs and, when `ids` are
   * given, until the database shows all of them finished. Returns
   * { tStart, tEnd, seconds, executed, timedOut, maxRssMB, workerCpuMs,
   * serverCpuMs (the embedded server's CPU over the same span, else null), children }.
   * tStart is the first executor start in any worker; tEnd the moment the
   * database showed every job of `ids` finished (else the last executor end).
   */
  async runWorkers({ lib, url, procs = 1, concurrency, expected, ids, record = "none", during, timeoutMs = this.timeoutMs }) {
    const kids = Array.from({ length: procs }, (_, i) => new Child(`${lib}-worker-${i + 1}`));
    const deadline = now() + timeoutMs;
    try {
      await Promise.all(kids.map((k) => k.call("open", { lib, url, role: "worker", concurrency, record, pool: POOL })));
      const executed = new Array(procs).fill(0);
      let wake = () => undefined;
      kids.forEach((k, i) => {
        k.onEvent = (event) => {
          if (event.event === "progress") {
            executed[i] = event.executed;
            wake();
          }
        };
      });
      const serverCpuAtStart = this.server.cpuMs();
      await Promise.all(kids.map((k) => k.call("start", {}, 60_000)));
      let duringResult;
      if (during) duringResult = await during();
      const target = typeof expected === "function" ? expected(duringResult) : expected;
      while (sum(executed) < target && now() < deadline && kids.every((k) => !k.exited)) {
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, 250);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      let tEnd = null;
      let timedOut = sum(executed) < target;
      if (!timedOut && ids) {
        tEnd = await this.waitFinished(lib, url, ids, deadline);
        if (tEnd === null) timedOut = true;
      }
      const serverCpuAtEnd = this.server.cpuMs();
      const results = await Promise.all(kids.map((k) => k.call("stop", {}, 60_000)));
      const starts = results.map((r) => r.firstStart).filter((t) => t !== null);
      const ends = results.map((r) => r.lastEnd).filter((t) => t !== null);
      const tStart = starts.length > 0 ? Math.min(...starts) : null;
      tEnd ??= ends.length > 0 ? Math.max(...ends) : null;
      const done = sum(results.map((r) => r.executed));
      return {
        tStart,
        tEnd,
        seconds: tStart !== null && tEnd !== null ? (tEnd - tStart) / 1000 : null,
        executed: done,
        expected: target,
        timedOut,
        during: duringResult,
        maxRssMB: Math.max(...results.map((r) => r.maxRssMB)),
        workerCpuMs: sum(results.map((r) => r.cpuMs)),
        serverCpuMs: serverCpuAtStart === null || serverCpuAtEnd === null ? null : serverCpuAtEnd - serverCpuAtStart,
        children: results,
      };
    } finally {
      await Promise.all(kids.map((k) => k.close()));
    }
  }

  /** Polls until none of `ids` is unfinished; returns the start time of the poll that saw none (null on timeout). */
  async waitFinished(lib, url, ids, deadline) {
    const client = new pg.Client({ connectionString: url, application_name: "bench-observer" });
    client.on("error", () => undefined);
    await client.connect();
    try {
      let remaining = ids;
      for (;;) {
        const t = now();
        const q = adapters[lib].remainingQuery(remaining);
        const { rows } = await client.query(q.text, q.values);
        if (rows.length === 0) return t;
        remaining = rows.map((r) => String(r.id));
        if (now() > deadline) return null;
        await sleep(2);
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

module.exports = { Harness, now };
