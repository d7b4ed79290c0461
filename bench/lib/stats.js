"use strict";
// Small numeric helpers: percentiles, medians, formatting.

/** The p-th percentile (0..100) of numbers, by linear interpolation; null for an empty list. */
function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = Float64Array.from(values).sort();
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

function median(values) {
  const defined = values.filter((v) => typeof v === "number" && Number.isFinite(v));
  return defined.length === 0 ? null : percentile(defined, 50);
}

/** Medians of each numeric field across runs (non-numeric fields are taken from the first run). */
function medianOfRuns(runs) {
  if (runs.length === 0) return null;
  const out = {};
  for (const key of Object.keys(runs[0])) {
    const values = runs.map((r) => r[key]);
    if (values.every((v) => typeof v === "number" || v === null || v === undefined)) out[key] = median(values);
    else if (values.every((v) => typeof v === "boolean")) out[key] = values.some(Boolean);
    else out[key] = runs[0][key];
  }
  return out;
}

function sum(values) {
  let s = 0;
  for (const v of values) s += v;
  return s;
}

/** A number for a table cell: thousands separators, precision by magnitude. */
function fmt(value, unit) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (unit === "ms") return value >= 100 ? Math.round(value).toLocaleString("en-US") : value.toFixed(value >= 10 ? 1 : 2);
  if (unit === "s") return value.toFixed(value >= 100 ? 0 : 1);
  if (unit === "MB") return value >= 100 ? Math.round(value).toLocaleString("en-US") : value.toFixed(1);
  if (unit === "us") return value >= 100 ? Math.round(value).toLocaleString("en-US") : value.toFixed(1);
  if (unit === "rows") return Math.round(value).toLocaleString("en-US");
  if (unit === "x") return value.toFixed(2);
  if (value >= 100) return Math.round(value).toLocaleString("en-US");
  return value.toFixed(1);
}

/** Deterministic PRNG (mulberry32) so graphs are the same for every library and run. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

module.exports = { percentile, median, medianOfRuns, sum, fmt, prng };
