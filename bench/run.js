#!/usr/bin/env node
"use strict";
// Skein's benchmark suite (issue 4, and the targets of "performance at
// production shape"). `npm run bench`: Skein alone. `npm run bench:compare`:
// the same workloads on Skein (tuned and with its defaults), graphile-worker,
// pg-boss and a plain-SQL queue loop in one run, on one PostgreSQL server
// (embedded, or --database-url). See docs/BENCHMARKS.md.
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const adapters = require("./adapters");
const { allCases } = require("./lib/cases");
const { Harness } = require("./lib/harness");
const { parseArgs, HELP } = require("./lib/options");
const { killAll } = require("./lib/procs");
const { buildRows, consoleTable, markdownTable, checkTargets, targetsText, LABELS } = require("./lib/report");
const { openServer } = require("./lib/server");
const { snapshotPackage, gitState } = require("./lib/snapshot");
const { median, medianOfRuns } = require("./lib/stats");
const { setInterval, clearInterval } = require("node:timers");

const RESULTS = path.join(__dirname, "results");
const log = (...args) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...args);

let server;
let snapshot;
function emergencyCleanup() {
  killAll();
  server?.killNow();
  if (snapshot) fs.rmSync(snapshot, { recursive: true, force: true });
  snapshot = undefined;
}
process.on("exit", emergencyCleanup);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    log(`${signal}: stopping children and the embedded server`);
    emergencyCleanup();
    process.exit(130);
  });
}

function selectCases(opts) {
  const matches = (id, prefixes) => prefixes.some((p) => id === p || id.startsWith(`${p}.`) || id.startsWith(p));
  return allCases(opts).filter((c) => (opts.only.length === 0 || matches(c.id, opts.only)) && !matches(c.id, opts.skip));
}

/** Whether `lib` takes part in case `c`: the adapter's kinds, and the case's own list of libraries (the soak's). */
function takesPart(c, lib) {
  const kinds = adapters[lib].kinds;
  return (!kinds || kinds.includes(c.kind)) && (!c.libs || c.libs.includes(lib));
}

function summary(run) {
  const keys = ["rate", "repeatedRate", "minIntervalRate", "p50", "p99", "stepP50", "resolveMs", "seconds", "workerCpuUsPerJob", "serverCpuUsPerJob", "maxRssMB"];
  const parts = [];
  for (const k of keys) {
    if (typeof run[k] === "number") parts.push(`${k}=${run[k] >= 100 ? Math.round(run[k]) : run[k].toFixed(2)}`);
  }
  if (run.timedOut) parts.push("TIMED OUT");
  return parts.join(" ");
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (error) {
    console.error(error.message);
    process.exit(2);
  }
  if (opts.help) {
    process.stdout.write(HELP);
    return;
  }
  const cases = selectCases(opts);
  if (opts.list) {
    for (const c of allCases(opts)) {
      const libs = Object.keys(adapters).filter((l) => takesPart(c, l) && (!c.needsDependencies || adapters[l].supportsDependencies));
      console.log(`${c.id.padEnd(18)} ${c.title}  [${libs.join(", ")}${c.once ? "; runs once" : ""}]`);
    }
    return;
  }
  if (cases.length === 0) throw new Error("no case matches --only/--skip (see --list)");
  if (!fs.existsSync(path.join(__dirname, "..", "dist", "index.js"))) throw new Error("dist/ is missing: run `npm run build` first (npm run bench does)");

  snapshot = snapshotPackage();
  const git = gitState();
  const versions = Object.fromEntries(opts.libs.map((l) => [LABELS[l], adapters[l].version()]));
  const started = new Date();
  // The machine's load during the run: other work on it makes the numbers noisy.
  const loadAtStart = os.loadavg()[0];
  const loadSamples = [loadAtStart];
  const loadTimer = setInterval(() => loadSamples.push(os.loadavg()[0]), 30_000);
  loadTimer.unref();
  const command = `node bench/run.js ${process.argv.slice(2).join(" ")}`.trim();
  log(`${cases.length} cases × ${opts.libs.map((l) => LABELS[l]).join(", ")} × ${opts.repeats} repeat(s), scale ${opts.scale}, timeout ${opts.timeout} s per run`);
  if (opts.repeats === 1) log("one run per case (pass --repeats 3 for medians of three runs; it takes about three times as long)");
  server = await openServer({ databaseUrl: opts.databaseUrl, log: (m) => log(m) });
  const pgInfo = await server.describe();
  log(`PostgreSQL ${pgInfo.version} (${pgInfo.embedded ? "embedded" : "external"}): fsync=${pgInfo.fsync} synchronous_commit=${pgInfo.synchronous_commit} shared_buffers=${pgInfo.shared_buffers}`);

  const h = new Harness(server, opts, log);
  const results = {};
  try {
    for (const c of cases) {
      results[c.id] = {};
      const runs = Object.fromEntries(opts.libs.map((l) => [l, []]));
      for (const lib of opts.libs) {
        if (!takesPart(c, lib)) results[c.id][lib] = { notRun: true };
        else if (c.needsDependencies && !adapters[lib].supportsDependencies) results[c.id][lib] = { unsupported: true };
      }
      const repeats = c.once ? 1 : opts.repeats;
      for (let r = 1; r <= repeats; r++) {
        // Libraries take turns within a repeat, so a slow spell on the machine hits all of them.
        for (const lib of opts.libs) {
          if (results[c.id][lib]) continue;
          const t0 = Date.now();
          try {
            const run = await c.run(h, lib);
            runs[lib].push(run);
            log(`${c.id} ${LABELS[lib]} run ${r}/${repeats}: ${summary(run)} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
          } catch (error) {
            log(`${c.id} ${LABELS[lib]} run ${r}: FAILED: ${error.message.split("\n").slice(0, 6).join("\n")}`);
            results[c.id][lib] = { error: error.message.split("\n")[0] };
          }
        }
      }
      await c.cleanup?.();
      for (const lib of opts.libs) {
        if (results[c.id][lib]) continue;
        results[c.id][lib] = { runs: runs[lib], median: medianOfRuns(runs[lib]) };
      }
    }
  } finally {
    await server.close({ keep: opts.keep }).catch((e) => log(`closing the server: ${e.message}`));
    server = undefined;
    fs.rmSync(snapshot, { recursive: true, force: true });
    snapshot = undefined;
  }

  clearInterval(loadTimer);
  const rows = buildRows(cases, results, opts.libs);
  const serverText = `PostgreSQL ${pgInfo.version.split(" ")[0]} (${pgInfo.embedded ? "embedded" : "external"})`;
  const loadMedian = median(loadSamples);
  const targets = opts.libs.includes("skein") ? checkTargets(rows, results, { server: serverText, load: loadMedian, backlog: cases.find((c) => c.pending)?.pending }) : [];
  // Per-run details some cases print (the soak's table per minute).
  const details = [];
  for (const c of cases) {
    if (!c.details) continue;
    for (const lib of opts.libs) {
      for (const [i, run] of (results[c.id]?.[lib]?.runs ?? []).entries()) details.push(...c.details(run, `${LABELS[lib]}${i > 0 ? ` (run ${i + 1})` : ""}`), "");
    }
  }
  const finished = new Date();
  const meta = {
    date: started.toISOString(),
    minutes: (finished - started) / 60000,
    command,
    git,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? "?"}`,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    load: { atStart: loadAtStart, max: Math.max(...loadSamples), median: median(loadSamples), samples: loadSamples.length },
    postgres: pgInfo,
    versions,
    settings: Object.fromEntries(opts.libs.map((l) => [LABELS[l], adapters[l].settings])),
    scale: opts.scale,
    repeats: opts.repeats,
    backlogRounds: opts.backlogRounds,
    soak: { minutes: opts.soakMinutes, rate: opts.soakRate, batch: opts.soakBatch, libs: opts.soakLibs ?? ["skein"] },
  };
  const md = [
    `Run ${meta.date} (${meta.minutes.toFixed(1)} min): \`${command}\` at ${git.commit ?? "?"}${git.dirty ? " with uncommitted changes in src/" : ""}`,
    `Node ${meta.node}, ${meta.os}, ${meta.cpus}, ${meta.memoryGiB} GiB; PostgreSQL ${pgInfo.version} (${pgInfo.embedded ? "embedded" : "external"}, fsync=${pgInfo.fsync}, synchronous_commit=${pgInfo.synchronous_commit}, shared_buffers=${pgInfo.shared_buffers}, max_connections=${pgInfo.max_connections}; server CPU ${pgInfo.serverCpu}); ${Object.entries(meta.versions).map(([k, v]) => `${k} ${v}`).join(", ")}; scale ${opts.scale}, ${opts.repeats === 1 ? "one run per case" : `median of ${opts.repeats} runs`}; 1-minute load average ${meta.load.atStart.toFixed(1)} at the start, median ${meta.load.median.toFixed(1)}, max ${meta.load.max.toFixed(1)} during the run.`,
    "",
    markdownTable(rows, opts.libs),
    "",
    ...details,
    targets.length > 0 ? targetsText(targets, true) : "",
  ].join("\n");

  fs.mkdirSync(RESULTS, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, "-").slice(0, 19);
  const out = opts.out ?? path.join(RESULTS, `${opts.libs.length > 1 ? "compare" : "bench"}-${stamp}.json`);
  const json = JSON.stringify({ meta, results, rows, targets }, null, 1);
  fs.writeFileSync(out, json);
  fs.writeFileSync(out.replace(/\.json$/, "") + ".md", md + "\n");
  if (!opts.out) fs.writeFileSync(path.join(RESULTS, "latest.json"), json);

  console.log("");
  console.log(`Skein benchmark, ${meta.date}, scale ${opts.scale}, ${opts.repeats === 1 ? "one run per case (--repeats 3 for medians)" : `median of ${opts.repeats} runs`}`);
  console.log(`PostgreSQL ${pgInfo.version} (${pgInfo.embedded ? "embedded" : "external"}), ${meta.cpus}; ${Object.entries(meta.versions).map(([k, v]) => `${k} ${v}`).join(", ")}`);
  console.log(`Load average (1 min): ${meta.load.atStart.toFixed(1)} at the start, median ${meta.load.median.toFixed(1)}, max ${meta.load.max.toFixed(1)} during the run (the benchmark's own processes included)`);
  console.log("");
  console.log(consoleTable(rows, opts.libs));
  if (opts.libs.length > 1) console.log("\n'Skein vs X': how many times better Skein is (>1: Skein better; throughput ratio, or inverse ratio for times).");
  if (details.length > 0) console.log(`\n${details.join("\n")}`);
  if (targets.length > 0) {
    console.log(`\nTargets (performance at production shape), ${serverText}:`);
    console.log(targetsText(targets, false));
  }
  console.log(`\nResults: ${path.relative(process.cwd(), out)} (and .md)`);
}

main().catch((error) => {
  log(error && error.stack ? error.stack : String(error));
  process.exitCode = 1;
  emergencyCleanup();
});
