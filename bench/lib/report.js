"use strict";
// The results table (console and Markdown) and the check of the targets
// (docs/BENCHMARKS.md, "Targets").
const adapters = require("../adapters");
const { TUNED_PREFETCH } = require("../adapters/skein");
const { fmt } = require("./stats");

const LABELS = Object.fromEntries(Object.entries(adapters).map(([k, a]) => [k, a.label]));

/** Rows of the table: one per case metric, plus memory, scale and scale-out rows derived from them. */
function buildRows(cases, results, libs) {
  const rows = [];
  const cell = (caseId, lib, key) => {
    const r = results[caseId]?.[lib];
    if (!r) return { value: null, note: "" };
    if (r.unsupported) return { value: null, note: "n/a" };
    if (r.notRun) return { value: null, note: "" };
    if (r.error) return { value: null, note: "error" };
    const v = r.median?.[key];
    return { value: typeof v === "number" ? v : null, note: r.median?.timedOut ? "timeout" : "" };
  };
  for (const c of cases) {
    if (!results[c.id]) continue;
    for (const m of c.metrics) {
      rows.push({ id: `${c.id}:${m.key}`, label: c.metrics.length > 1 ? `${c.title}: ${m.label}` : `${c.title} (${m.label})`, unit: m.unit, better: m.better, cells: Object.fromEntries(libs.map((l) => [l, cell(c.id, l, m.key)])) });
    }
  }
  const derived = (id, label, unit, better, fn) => {
    const cells = Object.fromEntries(libs.map((l) => [l, { value: fn(l), note: "" }]));
    if (Object.values(cells).some((c) => typeof c.value === "number")) rows.push({ id, label, unit, better, cells });
  };
  const med = (caseId, lib, key) => {
    const v = results[caseId]?.[lib]?.median?.[key];
    return typeof v === "number" ? v : null;
  };
  const drains100k = Object.keys(results).filter((id) => id.startsWith("drain.100k"));
  if (drains100k.length > 0) {
    derived("memory:maxRssMB", "worker peak RSS draining 100k (max over the drain configs, MB)", "MB", "lower", (l) => {
      const values = drains100k.map((id) => med(id, l, "maxRssMB")).filter((v) => v !== null);
      return values.length > 0 ? Math.max(...values) : null;
    });
  }
  for (const k of ["20k", "100k"]) {
    derived(`scaleout.${k}:ratio`, `scale-out: 4 worker processes ÷ 1, draining ${k} at c=10 (×)`, "x", "higher", (l) => {
      const one = med(`drain.${k}.1x10`, l, "rate");
      const four = med(`drain.${k}.4x10`, l, "rate");
      return one && four ? four / one : null;
    });
  }
  const ratio = (a, b) => (a && b ? a / b : null);
  derived("scale:ratio", "scale: throughput with 1M pending ÷ with none, fresh databases (×)", "x", "higher", (l) => ratio(med("scale.1m", l, "rate"), med("scale.10k", l, "rate")));
  derived("scale:ratioRepeated", "scale: the same after repeated drains in the same database (×)", "x", "higher", (l) =>
    ratio(med("scale.1m", l, "repeatedRate"), med("scale.10k", l, "repeatedRate")),
  );
  return rows;
}

/** How many times better `lib` is than `peer` on this row (>1: lib better). */
function advantage(row, peer, lib = "skein") {
  const s = row.cells[lib]?.value;
  const p = row.cells[peer]?.value;
  if (typeof s !== "number" || typeof p !== "number" || s <= 0 || p <= 0) return null;
  return row.better === "lower" ? p / s : s / p;
}

/** Skein against every other library of the run (not against its own variants). */
function columns(libs) {
  const peers = libs.includes("skein") ? libs.filter((l) => l !== "skein" && adapters[l].family !== "skein") : [];
  return { peers, headers: ["workload", ...libs.map((l) => LABELS[l]), ...peers.map((p) => `Skein vs ${LABELS[p]}`)] };
}

function cellText(c, unit) {
  if (!c) return "";
  if (c.value === null) return c.note || "–";
  return `${fmt(c.value, unit)}${c.note ? ` (${c.note})` : ""}`;
}

function tableLines(rows, libs) {
  const { peers } = columns(libs);
  return rows.map((row) => [
    row.label,
    ...libs.map((l) => cellText(row.cells[l], row.unit)),
    ...peers.map((p) => {
      const a = advantage(row, p);
      return a === null ? "" : `${a.toFixed(2)}×`;
    }),
  ]);
}

function consoleTable(rows, libs) {
  const { headers } = columns(libs);
  const lines = tableLines(rows, libs);
  const widths = headers.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmtLine = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [fmtLine(headers), widths.map((w) => "-".repeat(w)).join("  "), ...lines.map(fmtLine)].join("\n");
}

function markdownTable(rows, libs) {
  const { headers } = columns(libs);
  const lines = tableLines(rows, libs);
  return [
    `| ${headers.join(" | ")} |`,
    `|${headers.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
    ...lines.map((cells) => `| ${cells.join(" | ")} |`),
  ].join("\n");
}

const x = (v) => `${v.toFixed(2)}×`;
const pct = (v) => `${(v * 100).toFixed(0)}%`;
const us = (v) => (v === null || v === undefined ? "?" : Math.round(v).toString());

/**
 * The targets of the issue "performance at production shape", as far as this
 * run measured them: { group, target, measured, pass } (pass null when not
 * measured; those are left out). `context`: { server: "PostgreSQL 18.4
 * (embedded)", load: median 1-minute load average, soakOffered }.
 */
function checkTargets(rows, results = {}, context = {}) {
  const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
  const value = (id, lib = "skein") => byId[id]?.cells[lib]?.value ?? null;
  const ratio = (id, peer, lib = "skein") => (byId[id] ? advantage(byId[id], peer, lib) : null);
  const med = (caseId, key, lib = "skein") => {
    const v = results[caseId]?.[lib]?.median?.[key];
    return typeof v === "number" ? v : null;
  };
  const out = [];
  const add = (group, target, measured, pass) => out.push({ group, target, measured, pass: measured === null ? null : Boolean(pass) });
  const on = context.server ? ` on ${context.server}` : "";
  const drains = ["drain.20k.1x10", "drain.20k.1x50", "drain.100k.1x10", "drain.100k.1x50"];
  const allDrains = ["drain.20k.1x10", "drain.20k.1x50", "drain.20k.4x10", "drain.100k.1x10", "drain.100k.1x50", "drain.100k.4x10"];

  // Defaults: Skein with nothing but its concurrency set, against the tuned worker (prefetch 100).
  for (const id of allDrains) {
    const d = value(`${id}:rate`, "skein-defaults");
    const t = value(`${id}:rate`);
    const r = d && t ? d / t : null;
    add("Defaults", `${id}: defaults ≥ 90% of tuned (prefetch ${TUNED_PREFETCH})`, r === null ? null : `${pct(r)} (${Math.round(d)} vs ${Math.round(t)} jobs/s)`, r >= 0.9);
  }
  // Drain: against graphile-worker at its best settings, and against the plain-SQL ceiling.
  for (const id of drains) {
    const r = ratio(`${id}:rate`, "graphile");
    add("Drain", `${id}: ≥ 1.2× graphile-worker${on}`, r === null ? null : x(r), r >= 1.2);
  }
  for (const id of drains) {
    const s = value(`${id}:rate`);
    const q = value(`${id}:rate`, "sql");
    const r = s && q ? s / q : null;
    add("Drain", `${id}: ≥ 60% of the plain-SQL loop${on}`, r === null ? null : `${pct(r)} (${Math.round(q)} jobs/s)`, r >= 0.6);
  }
  // Scale-out: 4 processes against 1, and against graphile-worker's 4; CPU per job on both sides.
  for (const k of ["20k", "100k"]) {
    const id = `drain.${k}.4x10`;
    const four = value(`${id}:rate`);
    const one = value(`drain.${k}.1x10:rate`);
    const cpu = (lib) => `${us(med(id, "workerCpuUsPerJob", lib))} + ${us(med(id, "serverCpuUsPerJob", lib))} µs`;
    add("Scale-out", `${k}: 4 worker processes ≥ 1 process (c=10 each)`, four && one ? `${x(four / one)} (${Math.round(four)} vs ${Math.round(one)} jobs/s; CPU/job worker + server ${cpu("skein")})` : null, four / one >= 1);
    const r = ratio(`${id}:rate`, "graphile");
    add("Scale-out", `${k}: 4 worker processes ≥ 1.2× graphile-worker's 4`, r === null ? null : `${x(r)} (CPU/job worker + server: Skein ${cpu("skein")}, graphile-worker ${cpu("graphile")})`, r >= 1.2);
  }
  // Backlog: a million jobs pending that cannot run (fewer with --scale).
  const pending = context.backlog === undefined || context.backlog === 1_000_000 ? "1M" : context.backlog.toLocaleString("en-US");
  const fresh = value("scale:ratio");
  add("Backlog", `${pending} pending, fresh database: ≥ 90% of an empty table's throughput`, fresh === null ? null : `${pct(fresh)} (${Math.round(value("scale.1m:rate"))} vs ${Math.round(value("scale.10k:rate"))} jobs/s)`, fresh >= 0.9);
  const repeated = value("scale:ratioRepeated");
  add(
    "Backlog",
    `${pending} pending, after repeated drains in the same database: ≥ 90% of an empty table's (after as many)`,
    repeated === null ? null : `${pct(repeated)} (${Math.round(value("scale.1m:repeatedRate"))} vs ${Math.round(value("scale.10k:repeatedRate"))} jobs/s)`,
    repeated >= 0.9,
  );
  const soakMin = value("soak:minIntervalRate");
  const offered = context.soakOffered ?? med("soak", "offered");
  if (soakMin !== null && offered) {
    const r = soakMin / offered;
    const soakRun = results.soak?.skein?.median ?? {};
    const detail = [
      `lowest ${soakRun.intervalSeconds === 60 ? "minute" : "interval"} ${Math.round(soakMin)} jobs/s`,
      `producer's lowest ${Math.round(soakRun.minIntervalProducedRate ?? 0)}`,
      `p99 ${fmt(soakRun.p99, "ms")} ms (worst minute ${fmt(soakRun.worstIntervalP99, "ms")})`,
      `readiness index ${fmt(soakRun.readyIndexMBStart, "MB")} → ${fmt(soakRun.readyIndexMBEnd, "MB")} MB`,
      `dead tuples ≤ ${fmt(soakRun.deadTuplesMax, "rows")}`,
    ].join("; ");
    add("Backlog", `soak, ${soakRun.minutes ?? "?"} min at ${offered.toLocaleString("en-US")} jobs/s over ${pending} pending: every ${soakRun.intervalSeconds === 60 ? "minute" : `${soakRun.intervalSeconds} s`} ≥ 90% of the offered rate`, `${pct(r)} (${detail})`, r >= 0.9 && soakRun.caughtUp !== false);
  }
  // Bulk enqueue.
  const bulk = ratio("enqueue.bulk1k:rate", "graphile");
  add("Bulk enqueue", "1,000 per call ≥ 1.2× graphile-worker addJobs", bulk === null ? null : x(bulk), bulk >= 1.2);
  const bulk100k = ratio("enqueue.bulk100k:rate", "graphile");
  add("Bulk enqueue", "100,000 in one call ≥ 1.2× graphile-worker addJobs", bulk100k === null ? null : x(bulk100k), bulk100k >= 1.2);
  const deps = value("enqueue.bulk1k-deps:rate");
  const plainPeer = value("enqueue.bulk1k:rate", "graphile");
  const depsRatio = deps && plainPeer ? deps / plainPeer : null;
  add("Bulk enqueue", "with dependencies, 1,000 per call ≥ 1.0× graphile-worker's plain addJobs", depsRatio === null ? null : x(depsRatio), depsRatio >= 1.0);
  // What already leads.
  const single = ratio("enqueue.single:rate", "graphile");
  add("Keep", "one at a time, 8 clients ≥ 2× graphile-worker addJob", single === null ? null : x(single), single >= 2);
  const p99 = value("latency:p99");
  const quiet = context.load === undefined ? "" : ` (load average median ${context.load.toFixed(1)} during the run)`;
  add("Keep", "latency p99 ≤ 6 ms on a quiet machine", p99 === null ? null : `${p99.toFixed(2)} ms${quiet}`, p99 <= 6);
  const step = ratio("deps.chains:stepP50", "pgboss");
  const stepMs = value("deps.chains:stepP50");
  add("Keep", "chain step p50 ahead of pg-boss", step === null ? null : `${x(step)} (${stepMs.toFixed(2)} ms)`, step > 1);
  const fanIn = value("deps.fanin:resolveMs");
  add("Keep", "fan-in of 10,000 resolves < 1 s", fanIn === null ? null : `${fanIn.toFixed(0)} ms`, fanIn < 1000);
  const fanOut = value("deps.fanout:resolveMs");
  add("Keep", "fan-out of 10,000 resolves < 1 s", fanOut === null ? null : `${fanOut.toFixed(0)} ms`, fanOut < 1000);
  const rss = value("memory:maxRssMB");
  add("Keep", "worker RSS < 200 MB draining 100,000", rss === null ? null : `${rss.toFixed(0)} MB`, rss < 200);
  return out.filter((t) => t.measured !== null);
}

function targetsText(targets, markdown) {
  if (targets.length === 0) return "";
  const met = targets.filter((t) => t.pass).length;
  if (markdown) {
    return [
      `${met} of ${targets.length} targets met.`,
      "",
      "| group | target | measured | met |",
      "|---|---|---|:---:|",
      ...targets.map((t) => `| ${t.group} | ${t.target} | ${t.measured} | ${t.pass ? "yes" : "**no**"} |`),
    ].join("\n");
  }
  const g = Math.max(...targets.map((t) => t.group.length));
  const w = Math.max(...targets.map((t) => t.target.length));
  return [...targets.map((t) => `${t.pass ? "  met " : "  MISS"}  ${t.group.padEnd(g)}  ${t.target.padEnd(w)}  ${t.measured}`), `  ${met} of ${targets.length} met`].join("\n");
}

module.exports = { buildRows, consoleTable, markdownTable, checkTargets, targetsText, LABELS };
