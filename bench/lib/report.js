"use strict";
// The results table (console and Markdown) and the check of issue 4's targets.
const { fmt } = require("./stats");

const LABELS = { skein: "Skein", graphile: "graphile-worker", pgboss: "pg-boss" };

/** Rows of the table: one per case metric, plus memory and scale ratio rows derived from them. */
function buildRows(cases, results, libs) {
  const rows = [];
  const cell = (caseId, lib, key) => {
    const r = results[caseId]?.[lib];
    if (!r) return { value: null, note: "" };
    if (r.unsupported) return { value: null, note: "n/a" };
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
  const drains100k = Object.keys(results).filter((id) => id.startsWith("drain.100k"));
  if (drains100k.length > 0) {
    const cells = {};
    for (const l of libs) {
      const values = drains100k.map((id) => results[id]?.[l]?.median?.maxRssMB).filter((v) => typeof v === "number");
      cells[l] = { value: values.length > 0 ? Math.max(...values) : null, note: "" };
    }
    rows.push({ id: "memory:maxRssMB", label: "worker peak RSS draining 100k (max over the drain configs, MB)", unit: "MB", better: "lower", cells });
  }
  if (results["scale.10k"] && results["scale.1m"]) {
    const cells = {};
    for (const l of libs) {
      const small = results["scale.10k"][l]?.median?.rate;
      const large = results["scale.1m"][l]?.median?.rate;
      cells[l] = { value: small && large ? large / small : null, note: "" };
    }
    rows.push({ id: "scale:ratio", label: "scale: throughput with 1M pending ÷ with 10k (×)", unit: "x", better: "higher", cells });
  }
  return rows;
}

/** How many times better Skein is than `peer` on this row (>1: Skein better). */
function advantage(row, peer) {
  const s = row.cells.skein?.value;
  const p = row.cells[peer]?.value;
  if (typeof s !== "number" || typeof p !== "number" || s <= 0 || p <= 0) return null;
  return row.better === "lower" ? p / s : s / p;
}

function columns(libs) {
  const peers = libs.includes("skein") ? libs.filter((l) => l !== "skein") : [];
  return { peers, headers: ["workload", ...libs.map((l) => LABELS[l]), ...peers.map((p) => `Skein vs ${LABELS[p]}`)] };
}

function cellText(c, unit) {
  if (!c) return "";
  if (c.value === null) return c.note || "–";
  return `${fmt(c.value, unit)}${c.note ? ` (${c.note})` : ""}`;
}

function tableLines(rows, libs) {
  const { peers, headers } = columns(libs);
  return rows.map((row) => [
    row.label,
    ...libs.map((l) => cellText(row.cells[l], row.unit)),
    ...peers.map((p) => {
      const a = advantage(row, p);
      return a === null ? "" : `${a.toFixed(2)}×`;
    }),
  ]).map((cells) => ({ cells, headers }));
}

function consoleTable(rows, libs) {
  const { headers } = columns(libs);
  const lines = tableLines(rows, libs).map((l) => l.cells);
  const widths = headers.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmtLine = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [fmtLine(headers), widths.map((w) => "-".repeat(w)).join("  "), ...lines.map(fmtLine)].join("\n");
}

function markdownTable(rows, libs) {
  const { headers } = columns(libs);
  const lines = tableLines(rows, libs).map((l) => l.cells);
  return [
    `| ${headers.join(" | ")} |`,
    `|${headers.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
    ...lines.map((cells) => `| ${cells.join(" | ")} |`),
  ].join("\n");
}

/** Issue 4's targets for Skein, as far as this run measured them. */
function checkTargets(rows) {
  const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
  const value = (id, lib = "skein") => byId[id]?.cells[lib]?.value ?? null;
  const ratio = (id, peer) => (byId[id] ? advantage(byId[id], peer) : null);
  const out = [];
  const add = (target, measured, pass) => out.push({ target, measured, pass: measured === null ? null : pass });
  for (const id of ["drain.20k.1x10:rate", "drain.20k.1x50:rate", "drain.100k.1x10:rate", "drain.100k.1x50:rate"]) {
    const r = ratio(id, "graphile");
    add(`${id.split(":")[0]}: ≥ 1.2× graphile-worker`, r === null ? null : `${r.toFixed(2)}×`, r !== null && r >= 1.2);
  }
  const p50 = value("latency:p50");
  const p99 = value("latency:p99");
  add("latency p50 ≤ 2 ms", p50 === null ? null : `${p50.toFixed(2)} ms`, p50 !== null && p50 <= 2);
  add("latency p99 ≤ 6 ms", p99 === null ? null : `${p99.toFixed(2)} ms`, p99 !== null && p99 <= 6);
  const bulk = byId["enqueue.bulk1k-deps:rate"] && byId["enqueue.bulk1k:rate"] ? value("enqueue.bulk1k-deps:rate") / value("enqueue.bulk1k:rate", "graphile") : null;
  add("bulk with dependencies ≥ 1.5× graphile-worker addJobs (1,000 per call)", bulk === null || !Number.isFinite(bulk) ? null : `${bulk.toFixed(2)}×`, bulk >= 1.5);
  const bulkPlain = ratio("enqueue.bulk1k:rate", "graphile");
  add("bulk without dependencies ≥ 1.5× graphile-worker addJobs (1,000 per call)", bulkPlain === null ? null : `${bulkPlain.toFixed(2)}×`, bulkPlain >= 1.5);
  const bulk100k = ratio("enqueue.bulk100k:rate", "graphile");
  add("bulk 100,000 in one call ≥ 1.5× graphile-worker addJobs", bulk100k === null ? null : `${bulk100k.toFixed(2)}×`, bulk100k >= 1.5);
  const single = ratio("enqueue.single:rate", "graphile");
  add("one at a time, 8 clients ≥ 3× graphile-worker addJob", single === null ? null : `${single.toFixed(2)}×`, single >= 3);
  const step = value("deps.chains:stepP50");
  add("chain step p50 ≤ 5 ms", step === null ? null : `${step.toFixed(2)} ms`, step !== null && step <= 5);
  const fanIn = value("deps.fanin:resolveMs");
  add("fan-in of 10,000 resolves < 1 s", fanIn === null ? null : `${fanIn.toFixed(0)} ms`, fanIn !== null && fanIn < 1000);
  const fanOut = value("deps.fanout:resolveMs");
  add("fan-out of 10,000 resolves < 1 s", fanOut === null ? null : `${fanOut.toFixed(0)} ms`, fanOut !== null && fanOut < 1000);
  const scale = value("scale:ratio");
  add("throughput with 1M pending ≥ 85% of with 10k", scale === null ? null : `${(scale * 100).toFixed(0)}%`, scale !== null && scale >= 0.85);
  const rss = value("memory:maxRssMB");
  add("worker RSS < 200 MB draining 100,000", rss === null ? null : `${rss.toFixed(0)} MB`, rss !== null && rss < 200);
  return out.filter((t) => t.measured !== null);
}

function targetsText(targets, markdown) {
  if (targets.length === 0) return "";
  if (markdown) {
    return ["| target | Skein | met |", "|---|---:|:---:|", ...targets.map((t) => `| ${t.target} | ${t.measured} | ${t.pass ? "yes" : "**no**"} |`)].join("\n");
  }
  const w = Math.max(...targets.map((t) => t.target.length));
  return targets.map((t) => `${t.pass ? "  met " : "  MISS"}  ${t.target.padEnd(w)}  ${t.measured}`).join("\n");
}

module.exports = { buildRows, consoleTable, markdownTable, checkTargets, targetsText, LABELS };
