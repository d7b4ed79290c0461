"use strict";
// The soak case: a producer and a worker running together for minutes, at a
// steady rate, over a backlog of a million jobs that cannot run. Does the
// throughput hold, and do vacuum and pruning keep the queue table and its
// readiness index from growing? Sampled once a minute.
const { setTimeout: sleep } = require("node:timers/promises");
const pg = require("pg");
const adapters = require("../adapters");
const { Child } = require("./procs");
const { percentile, fmt } = require("./stats");

const CONCURRENCY = 10;
const POOL = 10;
const MB = 1024 * 1024;
const minutesText = (m) => (Number.isInteger(m) ? String(m) : m.toFixed(2));

/**
 * Size and vacuum state of the library's queue table (and history table, if
 * it has one), summed over the leaf partitions of a partitioned table
 * (pg-boss keeps a partition per queue).
 */
async function tableStats(client, tables) {
  const out = {};
  // The table itself, and its partitions if it has any (pg_partition_tree is empty for a plain table).
  const leaves = "SELECT $1::regclass UNION SELECT relid FROM pg_partition_tree($1::regclass) WHERE isleaf";
  const { rows } = await client.query(
    `SELECT sum(n_dead_tup)::float8 AS dead, sum(autovacuum_count)::int AS autovacuums, sum(autoanalyze_count)::int AS autoanalyzes,
       sum(pg_relation_size(relid))::float8 AS heap, sum(pg_indexes_size(relid))::float8 AS indexes
     FROM pg_stat_all_tables WHERE relid IN (${leaves})`,
    [tables.queue],
  );
  const t = rows[0] ?? {};
  out.deadTuples = t.dead ?? null;
  out.autovacuums = t.autovacuums ?? null;
  out.autoanalyzes = t.autoanalyzes ?? null;
  out.queueHeapMB = t.heap === null || t.heap === undefined ? null : t.heap / MB;
  out.queueIndexesMB = t.indexes === null || t.indexes === undefined ? null : t.indexes / MB;
  if (tables.readyIndex) {
    const { rows: idx } = await client.query(
      `SELECT c.relname AS name, pg_relation_size(i.indexrelid)::float8 AS bytes
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid IN (${leaves})`,
      [tables.queue],
    );
    const ready = idx.filter((r) => tables.readyIndex.test(r.name));
    out.readyIndex = ready.map((r) => r.name).join("+") || null;
    out.readyIndexMB = ready.length > 0 ? ready.reduce((s, r) => s + r.bytes, 0) / MB : null;
  }
  if (tables.history) {
    const { rows: h } = await client.query(
      `SELECT sum(n_live_tup)::float8 AS live, sum(pg_total_relation_size(relid))::float8 AS bytes FROM pg_stat_all_tables WHERE relid IN (${leaves})`,
      [tables.history],
    );
    out.historyRows = h[0]?.live ?? null;
    out.historyMB = h[0]?.bytes === null || h[0]?.bytes === undefined ? null : h[0].bytes / MB;
  }
  return out;
}

function soak(scaled, opts) {
  const pending = scaled(1_000_000, 1000);
  const minutes = opts.soakMinutes;
  const offered = opts.soakRate;
  const batch = opts.soakBatch;
  const seconds = minutes * 60;
  // One sample a minute; a soak shorter than two minutes is sampled twice.
  const intervalMs = Math.min(60_000, (seconds * 1000) / 2);
  return {
    id: "soak",
    kind: "soak",
    once: true,
    libs: opts.soakLibs ?? ["skein"],
    offered,
    pending,
    title: `soak: ${minutesText(minutes)} min at ${offered.toLocaleString("en-US")} jobs/s (${batch} per call) over ${pending.toLocaleString("en-US")} pending (1 worker, c=${CONCURRENCY})`,
    metrics: [
      { key: "minIntervalRate", label: "lowest minute, jobs/s", unit: "jobs/s", better: "higher" },
      { key: "p50", label: "latency p50 ms", unit: "ms", better: "lower" },
      { key: "p99", label: "latency p99 ms", unit: "ms", better: "lower" },
      { key: "worstIntervalP99", label: "worst minute's latency p99 ms", unit: "ms", better: "lower" },
      { key: "readyIndexMBEnd", label: "readiness index at the end, MB", unit: "MB", better: "lower" },
      { key: "deadTuplesMax", label: "most dead tuples in the queue table", unit: "rows", better: "lower" },
    ],
    async run(h, lib) {
      const backlog = await h.backlogTemplate(lib, pending);
      const db = await h.freshDatabase(lib, "soak", { from: backlog.name });
      const tables = adapters[lib].tables();
      const observer = new pg.Client({ connectionString: db.url, application_name: "bench-observer" });
      observer.on("error", () => undefined);
      const worker = new Child(`${lib}-worker-1`);
      let producer;
      try {
        await observer.connect();
        await worker.call("open", { lib, url: db.url, role: "worker", concurrency: CONCURRENCY, record: "latency", pool: POOL });
        producer = await h.producer(lib, db.url);
        // The producer's lateness (how far behind its schedule its calls started), the worst per interval.
        const produced = { lagMs: 0 };
        producer.onEvent = (e) => {
          if (e.event === "produced") produced.lagMs = Math.max(produced.lagMs, e.lagMs);
        };
        const before = await tableStats(observer, tables);
        await worker.call("start", {}, 60_000);
        const t0 = Date.now();
        const steady = producer.call("steady", { rate: offered, batch, seconds }, (seconds + 300) * 1000);
        steady.catch(() => undefined);
        const intervals = [];
        const all = [];
        let prev = { executed: 0, produced: 0, serverCpu: h.server.cpuMs(), workerCpu: 0 };
        for (let k = 1; k * intervalMs <= seconds * 1000 + 1; k++) {
          const wait = t0 + k * intervalMs - Date.now();
          if (wait > 0) await sleep(wait);
          // The worker first, then the producer: every job executed by then was issued by then.
          const c = await worker.call("collect", {}, 60_000);
          const p = await producer.call("produced", {}, 60_000);
          const serverCpu = h.server.cpuMs();
          const stats = await tableStats(observer, tables);
          const executed = c.executed - prev.executed;
          const made = p.count - prev.produced;
          for (const v of c.latencies) all.push(v);
          const sec = intervalMs / 1000;
          const row = {
            interval: k,
            atSeconds: Math.round((Date.now() - t0) / 1000),
            producedRate: made / sec,
            rate: executed / sec,
            // Jobs whose creating call has started but that have not started running (some may not be committed yet).
            behind: p.issued - c.executed,
            producerLagMs: produced.lagMs,
            p50: percentile(c.latencies, 50),
            p99: percentile(c.latencies, 99),
            max: percentile(c.latencies, 100),
            workerCpuUsPerJob: executed > 0 ? ((c.cpuMs - prev.workerCpu) * 1000) / executed : null,
            serverCpuUsPerJob: executed > 0 && serverCpu !== null && prev.serverCpu !== null ? ((serverCpu - prev.serverCpu) * 1000) / executed : null,
            ...stats,
          };
          produced.lagMs = 0;
          intervals.push(row);
          h.log(
            `soak ${adapters[lib].label} ${row.atSeconds} s: produced ${Math.round(row.producedRate)}/s, executed ${Math.round(row.rate)}/s, behind ${row.behind}, ` +
              `p50 ${fmt(row.p50, "ms")} p99 ${fmt(row.p99, "ms")} ms, dead tuples ${row.deadTuples}, ready index ${row.readyIndexMB === undefined ? "?" : fmt(row.readyIndexMB, "MB")} MB, autovacuums ${row.autovacuums}`,
          );
          prev = { executed: c.executed, produced: p.count, serverCpu, workerCpu: c.cpuMs };
        }
        const made = await steady;
        // The tail: give the worker up to a minute to catch up with the producer.
        let last = await worker.call("collect", {}, 60_000);
        for (const v of last.latencies) all.push(v);
        const tailDeadline = Date.now() + 60_000;
        while (last.executed < made.count && Date.now() < tailDeadline) {
          await sleep(250);
          last = await worker.call("collect", {}, 60_000);
          for (const v of last.latencies) all.push(v);
        }
        const stopped = await worker.call("stop", {}, 60_000);
        const rates = intervals.map((r) => r.rate);
        const p99s = intervals.map((r) => r.p99).filter((v) => v !== null);
        const deads = [before.deadTuples, ...intervals.map((r) => r.deadTuples)].filter((v) => v !== null);
        const end = intervals[intervals.length - 1] ?? {};
        return {
          offered,
          minutes,
          intervalSeconds: intervalMs / 1000,
          minIntervalRate: rates.length > 0 ? Math.min(...rates) : null,
          minIntervalProducedRate: intervals.length > 0 ? Math.min(...intervals.map((r) => r.producedRate)) : null,
          produced: made.count,
          producerErrors: made.errors,
          producerMaxLagMs: made.maxLagMs,
          executed: last.executed,
          caughtUp: last.executed >= made.count,
          p50: percentile(all, 50),
          p99: percentile(all, 99),
          max: percentile(all, 100),
          worstIntervalP99: p99s.length > 0 ? Math.max(...p99s) : null,
          readyIndex: end.readyIndex ?? null,
          readyIndexMBStart: before.readyIndexMB ?? null,
          readyIndexMBEnd: end.readyIndexMB ?? null,
          readyIndexMBMax: Math.max(...intervals.map((r) => r.readyIndexMB ?? 0)) || null,
          queueIndexesMBStart: before.queueIndexesMB,
          queueIndexesMBEnd: end.queueIndexesMB ?? null,
          deadTuplesMax: deads.length > 0 ? Math.max(...deads) : null,
          deadTuplesEnd: end.deadTuples ?? null,
          autovacuums: end.autovacuums ?? null,
          historyRowsEnd: end.historyRows ?? null,
          historyMBEnd: end.historyMB ?? null,
          maxRssMB: stopped.maxRssMB,
          backlog: backlog.count,
          intervals,
          timedOut: !(last.executed >= made.count),
        };
      } finally {
        await worker.close();
        await producer?.close();
        await observer.end().catch(() => undefined);
        await db.drop();
      }
    },
    /** The per-minute table of one run, as Markdown lines. */
    details(result, label) {
      if (!result || !Array.isArray(result.intervals)) return [];
      const head = [
        "s",
        "produced/s",
        "executed/s",
        "behind",
        "producer late ms",
        "p50 ms",
        "p99 ms",
        "max ms",
        "worker µs/job",
        "server µs/job",
        "dead tuples",
        "autovacuums",
        "ready index MB",
        "queue indexes MB",
        "queue heap MB",
        ...(result.intervals.some((r) => r.historyRows !== undefined) ? ["history rows", "history MB"] : []),
      ];
      const lines = [
        `${label}, soak of ${minutesText(result.minutes)} min, one row per ${result.intervalSeconds} s (offered ${result.offered.toLocaleString("en-US")} jobs/s; produced ${result.produced.toLocaleString("en-US")}, executed ${result.executed.toLocaleString("en-US")}; latency over the whole run p50 ${fmt(result.p50, "ms")}, p99 ${fmt(result.p99, "ms")}, max ${fmt(result.max, "ms")} ms):`,
        "",
        `| ${head.join(" | ")} |`,
        `|${head.map(() => "---:").join("|")}|`,
      ];
      for (const r of result.intervals) {
        const cells = [
          r.atSeconds,
          fmt(r.producedRate),
          fmt(r.rate),
          r.behind.toLocaleString("en-US"),
          fmt(r.producerLagMs, "ms"),
          fmt(r.p50, "ms"),
          fmt(r.p99, "ms"),
          fmt(r.max, "ms"),
          fmt(r.workerCpuUsPerJob, "us"),
          fmt(r.serverCpuUsPerJob, "us"),
          fmt(r.deadTuples, "rows"),
          r.autovacuums ?? "–",
          fmt(r.readyIndexMB, "MB"),
          fmt(r.queueIndexesMB, "MB"),
          fmt(r.queueHeapMB, "MB"),
        ];
        if (head.includes("history rows")) cells.push(fmt(r.historyRows, "rows"), fmt(r.historyMB, "MB"));
        lines.push(`| ${cells.join(" | ")} |`);
      }
      return lines;
    },
  };
}

module.exports = { soak, tableStats };
