"use strict";
// Job specs for the workloads, generated the same way for every library.
// A spec is { key, deps?: key[], runAt?: Date, payload?: object }. Keys are
// unique within one database; Skein uses them as job ids, pg-boss as flow refs.
const { prng } = require("./stats");

/** `chains` chains of `length` jobs: step s of chain c depends on step s-1. Keys "c<c>.<s>". */
function chains(count, length) {
  const specs = [];
  for (let c = 0; c < count; c++) {
    for (let s = 0; s < length; s++) specs.push({ key: `c${c}.${s}`, deps: s === 0 ? [] : [`c${c}.${s - 1}`] });
  }
  return specs;
}

/** `n` parents "p<i>" and one job "sink" that depends on all of them. */
function fanIn(n) {
  const specs = [];
  for (let i = 0; i < n; i++) specs.push({ key: `p${i}`, deps: [] });
  specs.push({ key: "sink", deps: specs.map((s) => s.key) });
  return specs;
}

/** One job "root" and `n` jobs "f<i>" that depend on it. */
function fanOut(n) {
  const specs = [{ key: "root", deps: [] }];
  for (let i = 0; i < n; i++) specs.push({ key: `f${i}`, deps: ["root"] });
  return specs;
}

/**
 * A random DAG of `n` jobs "d<i>": the first `roots` have no dependencies,
 * every later one depends on 2-5 distinct earlier jobs chosen uniformly.
 */
function dag(n, { roots = Math.max(1, Math.round(n / 50)), seed = 42, minDeps = 2, maxDeps = 5 } = {}) {
  const random = prng(seed);
  const specs = [];
  for (let i = 0; i < n; i++) {
    const deps = new Set();
    if (i >= roots) {
      const k = Math.min(i, minDeps + Math.floor(random() * (maxDeps - minDeps + 1)));
      while (deps.size < k) deps.add(`d${Math.floor(random() * i)}`);
    }
    specs.push({ key: `d${i}`, deps: [...deps] });
  }
  return specs;
}

/** One bulk call "with dependencies": job i depends on up to 2 random earlier jobs of the same call. */
function bulkWithDeps(prefix, n, seed) {
  const random = prng(seed);
  const specs = [];
  for (let i = 0; i < n; i++) {
    const deps = new Set();
    const k = Math.min(i, 2);
    while (deps.size < k) deps.add(`${prefix}${Math.floor(random() * i)}`);
    specs.push({ key: `${prefix}${i}`, deps: [...deps] });
  }
  return specs;
}

/**
 * A chunk of backlog that will not run during the benchmark. With
 * dependencies: one gate job scheduled a year ahead and n-1 jobs blocked on
 * it. Without: n jobs scheduled a day ahead.
 */
function backlogChunk(prefix, n, withDeps) {
  const later = new Date(Date.now() + 24 * 3600 * 1000);
  if (!withDeps) return Array.from({ length: n }, (_, i) => ({ key: `${prefix}${i}`, runAt: later }));
  const gate = `${prefix}gate`;
  const specs = [{ key: gate, runAt: new Date(Date.now() + 365 * 24 * 3600 * 1000) }];
  for (let i = 1; i < n; i++) specs.push({ key: `${prefix}${i}`, deps: [gate] });
  return specs;
}

/**
 * A backlog of `n` jobs in chunks of `chunk`: with `deps`, every other chunk
 * is blocked on a gate job (`withDeps`), the rest scheduled a day ahead.
 */
function* backlogChunks(n, { chunk = 10_000, deps = true } = {}) {
  for (let i = 0, made = 0; made < n; i++) {
    const size = Math.min(chunk, n - made);
    const withDeps = deps && i % 2 === 0 && size >= 2;
    yield { specs: backlogChunk(`bl${i}-`, size, withDeps), withDeps };
    made += size;
  }
}

module.exports = { chains, fanIn, fanOut, dag, bulkWithDeps, backlogChunks };
