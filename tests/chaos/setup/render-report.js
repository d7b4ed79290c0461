// Turns the figures the scenarios recorded (tests/chaos/.results/*.json) into docs/RELIABILITY.md.
// Only a full-budget run of every scenario rewrites docs/RELIABILITY.md; a short or partial run
// writes tests/chaos/.results/RELIABILITY.md instead (CHAOS_WRITE_REPORT=1 forces the docs file).
const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..", "..", "..");
const SCENARIOS = [
  {
    key: "crash",
    title: "Worker crashes",
    what: "4-8 worker processes drain a mixed graph (chains, fan-out, fan-in, diamonds, flaky jobs that succeed on a retry, doomed jobs whose downstream is cancelled) created while they run; a controller `kill -9`s a random worker every few seconds and starts a replacement.",
  },
  {
    key: "db-faults",
    title: "Database faults",
    what: "On an embedded PostgreSQL of its own, between batches of new jobs: every worker connection terminated (`pg_terminate_backend`, LISTEN connections included); PostgreSQL stopped for seconds and started again on the same port (fast shutdown, and immediate shutdown with crash recovery); a 100 ms statement timeout while the jobs table is locked at intervals; every connection slot of the server taken while the workers' connections are cut. Workers poll only every 30 s, so they depend on NOTIFY: afterwards each must still run, listen on a new connection and pick up new jobs at once.",
  },
  {
    key: "pause",
    title: "Clock and lease (SIGSTOP)",
    what: "A worker is paused with SIGSTOP mid-attempt for longer than its 3 s lease; a healthy worker reclaims and reruns the jobs; the paused worker is resumed while they still run and tries to record its overdue attempts (completions and a failure).",
  },
  {
    key: "graph-building",
    title: "Concurrent graph building",
    what: "Many client processes create overlapping graphs at once (createJobs batches and single createJob calls) whose jobs depend on each other's jobs, on jobs running or completing right now, and on archived ones (failed and cancelled included), while workers complete them.",
  },
  {
    key: "workflow",
    title: "Durable workflows through crashes",
    what: "Workflow jobs (five durable steps with `ctx.step`; after the second, two delegated children they wait for with `ctx.delegateAll`; after the fourth, half of them sleep with `ctx.sleep`) run on several worker processes while a controller `kill -9`s a random worker every few seconds and starts another. Waiting and sleeping park the parents, so they resume on any worker.",
  },
  {
    key: "migrations",
    title: "Migrations from 10 processes at once",
    what: "10 processes (`init-worker`, `run-worker`, or both mixed) migrate a fresh database at the same moment; then the racing workers run a graph of jobs on it.",
  },
  {
    key: "bad-input",
    title: "Bad input (fast-check)",
    what: "Generated input through `JobManager.createJob`/`createJobs`, the worker's result path and `skein create-job`: strange Unicode (NUL, lone surrogates, RTL marks, noncharacters, astral characters), ids made of quotes and SQL, deep JSON, payloads around the 16 MiB limit, cycles, thousands of dependencies, negative and absurd numbers, values of the wrong type.",
  },
  {
    key: "http-requests",
    title: "Generated HTTP requests (fast-check)",
    what: "Requests generated from the server's own OpenAPI document, for every operation, sent byte for byte over raw sockets: encoded (`/%61pi/...`), absolute-form, doubled-slash, dot-segment, upper-case and raw targets; odd and unknown methods; no token, a wrong, revoked or 8 KB one, another tenant's, the admin's; path and query values with NUL bytes, lone surrogates, SQL, known ids of other tenants and 20,000 characters; bodies built from each operation's schema with wrong types, missing and extra fields, malformed JSON, other content types and 3 MiB bodies.",
  },
];

const GUARANTEES = [
  {
    title: "No job is lost",
    text: "Every created job ends `completed`, `failed` or `cancelled`, through any number of worker crashes and database restarts.",
    how: "`lost`: after the scenario no job is live and every created id is in `job_history` exactly once.",
    scenarios: ["crash", "db-faults", "pause", "graph-building", "migrations"],
    kinds: ["lost"],
  },
  {
    title: "No job runs on two workers at the same time, and a completed job is never run again",
    text: "A job is claimed again only after the previous attempt's lease ended (it expired, or its holder gave the job back); an attempt runs once per claim; nothing is claimed after it finished.",
    how: "`lease`: every claim of attempt k+1 came after attempt k's lease could have expired (its last claim or renewal, sent at time t, holds the lease until at least t + lease) or after its holder's own write gave it back. `twice`: no (job, attempt) started or was claimed twice; no claim after the job finished.",
    scenarios: ["crash", "db-faults", "pause", "graph-building"],
    kinds: ["lease", "twice"],
  },
  {
    title: "A job's recorded result comes from the attempt that held the lease; a zombie's late write is refused",
    text: "The stored result is the one returned by the attempt whose lease was current when it was recorded; a paused or cut-off worker's completions, failures and renewals are refused once another attempt holds the job.",
    how: "`result`: the stored result names the worker, attempt number and lease token of the job's last claim, and was accepted once; `lease`: no write carrying an old lease token was accepted after a newer claim; the pause scenario requires every zombie write to be attempted and refused.",
    scenarios: ["pause", "crash", "db-faults"],
    kinds: ["result", "zombie"],
  },
  {
    title: "Dependency counts stay exact",
    text: "No job becomes ready before all its dependencies completed; none stays blocked after its last dependency completed; a job whose dependency failed or was cancelled is cancelled and never runs.",
    how: "`early`: no attempt was claimed or started before every dependency's `completed_at`, and the executor got every dependency's result. `dependencies`: sampled every 1-2 s during the run, in one snapshot, each live job's `pending_dependencies` equals its unfinished dependencies, none waits on a failed one, no running job has an unfinished one. `status`: each job ends as its graph dictates.",
    scenarios: ["graph-building", "crash", "db-faults", "migrations"],
    kinds: ["early", "dependencies", "status", "builder"],
  },
  {
    title: "Bad input never corrupts state",
    text: "Every input gets a clear error (a typed error naming the field or ids; on the CLI one line and exit code 2, or 1 for a refused operation) or is stored faithfully (read back equal); an error writes nothing.",
    how: "Property tests compare row counts before and after every refused input, read every accepted job back field by field, and require what the README calls invalid to be refused and valid-but-strange input to be accepted.",
    scenarios: ["bad-input"],
    kinds: ["input"],
  },
  {
    title: "The server answers every request, never with a 5xx, and a refused request writes nothing",
    text: "Whatever an HTTP client sends, the server replies (4xx for what it refuses, naming the field), never with a 5xx, a stack trace or a database address, and a refused request leaves every table as it was.",
    how: "`http`: every generated request gets a reply (Node's own handling of CONNECT aside) with a status below 500 and no internals in its body; for every 4xx, a hash of every row of every table of Skein's schema (a token's last-used time aside) is the same before and after; every operation of the OpenAPI document is tried.",
    scenarios: ["http-requests"],
    kinds: ["http"],
  },
  {
    title: "Workers survive database faults",
    text: "A worker process outlives terminated connections, database restarts, statement timeouts and a full server: it reconnects, its LISTEN connection recovers, it keeps draining jobs and exits 0 on SIGTERM.",
    how: "`survival`: no worker process exits unless the test kills or stops it (one started while the database is unreachable may exit with the documented one-line error; that is counted, not flagged). `listener`: after the faults each live worker listens on a new connection, and jobs created then start within 3 s although polls are 30 s apart. `liveness`: every scenario drains within its deadline. `exit`: SIGTERM ends every worker with code 0. `startup`: a worker that cannot start says why in one line.",
    scenarios: ["db-faults", "crash", "pause", "graph-building", "workflow", "migrations"],
    kinds: ["survival", "startup", "listener", "liveness", "exit", "fault"],
  },
  {
    title: "A workflow's completed steps and children never run again",
    text: "A step whose result was stored is given back, never run again, by every later attempt of its job (a retry, a resume after waiting or sleeping, a crash); a retried or resumed parent re-attaches to the children it delegated instead of making new ones; a child that completed is not run again.",
    how: "`workflow`: from each step's start and end traces and `job_steps`, no step starts in an attempt after the one that stored it; every parent has exactly its two children (two keys), no child starts after the attempt whose completion was recorded, and every workflow completes with the values its steps and children stored.",
    scenarios: ["workflow"],
    kinds: ["workflow"],
  },
  {
    title: "Migrations are safe from many processes at once",
    text: "Any number of processes may migrate the same fresh database at the same moment: each migration is applied and recorded once, and the schema is the one a single process makes.",
    how: "`migrate`: every process succeeds, `_prisma_migrations` holds each migration once, finished, with the file's checksum, the schema (columns, indexes, constraints) equals a serially migrated database, and the workers then run a graph correctly.",
    scenarios: ["migrations"],
    kinds: ["migrate"],
  },
];

const KINDS = [...new Set(GUARANTEES.flatMap((g) => g.kinds))];
/** The kind of a violation: its first "kind:" token (messages may be prefixed, e.g. "round 2: lease: ..."). */
function kindOf(violation) {
  const m = violation.match(new RegExp(`(?:^|: )(${KINDS.join("|")}): `));
  return m ? m[1] : "other";
}

function readResults(dir) {
  const results = {};
  if (!fs.existsSync(dir)) return results;
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".json"))) {
    try {
      const r = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8"));
      results[r.scenario] = r;
    } catch {
      // a half-written file of an interrupted run
    }
  }
  return results;
}

const sum = (values) => values.reduce((a, b) => a + (Number(b) || 0), 0);
const fmt = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : String(n));

function render(results) {
  const ran = SCENARIOS.filter((s) => results[s.key]);
  const all = ran.map((s) => results[s.key]);
  const violations = sum(all.map((r) => r.violations.length));
  const kills = sum(all.map((r) => r.faults["kill -9"] || 0));
  const pauses = sum(all.map((r) => r.faults.SIGSTOP || 0));
  const restarts = sum(all.map((r) => r.restarts || 0));
  const inputs = sum(all.map((r) => r.inputs || 0));
  const jobs = sum(all.map((r) => r.jobs || 0));
  const processes = sum(all.map((r) => r.workerProcesses || 0));
  const budgets = [...new Set(all.map((r) => r.budget))].join(", ");
  const duration = sum(all.map((r) => r.durationSeconds));
  const lines = [];
  lines.push("# Reliability");
  lines.push("");
  lines.push(
    "Skein's guarantees, the fault-injection scenario that tests each, and the figures of the suite's last run. " +
      "This file is written by the suite itself (`npm run test:chaos`, tests/chaos/): do not edit the figures by hand.",
  );
  lines.push("");
  lines.push(`**Last run:** ${new Date().toISOString().replace("T", " ").slice(0, 16)} UTC, budget \`${budgets}\`, ${Math.round(duration)} s of scenarios, Node.js ${process.version}. `);
  lines.push(`**Result:** ${violations === 0 ? "every invariant held" : `${violations} violation(s), listed below`}.`);
  lines.push("");
  lines.push("| jobs | Skein processes started | crashes injected (kill -9) | workers paused past their lease (SIGSTOP) | PostgreSQL restarts | generated inputs tried | invariant violations |");
  lines.push("|---:|---:|---:|---:|---:|---:|---:|");
  lines.push(`| ${fmt(jobs)} | ${fmt(processes)} | ${fmt(kills)} | ${fmt(pauses)} | ${fmt(restarts)} | ${fmt(inputs)} | **${fmt(violations)}** |`);
  lines.push("");
  lines.push("## Guarantees");
  lines.push("");
  const byKind = {};
  for (const r of all) for (const v of r.violations) byKind[kindOf(v)] = (byKind[kindOf(v)] || 0) + 1;
  if (violations > 0) {
    lines.push(
      `Violations by guarantee: ${GUARANTEES.map((g) => `${g.title.split(/[;,]/)[0].toLowerCase()}: ${sum(g.kinds.map((k) => byKind[k] || 0))}`).join("; ")}` +
        `${byKind.other ? `; other: ${byKind.other}` : ""}.`,
    );
    lines.push("");
  }
  for (const g of GUARANTEES) {
    const count = sum(g.kinds.map((k) => byKind[k] || 0));
    const held = count === 0;
    lines.push(`### ${g.title}`);
    lines.push("");
    lines.push(g.text);
    lines.push("");
    lines.push(`- Checked by: ${g.how}`);
    lines.push(`- Scenarios: ${g.scenarios.map((k) => `[${SCENARIOS.find((s) => s.key === k).title}](#${k})`).join(", ")}.`);
    lines.push(`- Last run: ${g.scenarios.some((k) => results[k]) ? (held ? "held (0 violations)." : `**violated** (${count} violation(s), listed under the scenarios below).`) : "not run."}`);
    lines.push("");
  }
  lines.push("Skein promises at-least-once execution: an attempt whose result could not be recorded (its worker died, or the database was unreachable for longer than the lease) runs again, so executors should be idempotent. What it rules out is two attempts holding a job at once, a late write from an attempt that lost its lease, and a job running again after it finished.");
  lines.push("");
  lines.push("## How it is checked");
  lines.push("");
  lines.push(
    "Worker processes are the real CLI (`node dist/cli/run-worker.js --stale-timeout 3 --heartbeat-interval 1`) loading `tests/chaos/fixtures/chaos-agents.js`. " +
      "That module is the test executor, and it also wraps the worker's database seam (`JobStore`) without changing it, so that each process appends to its own execution log: " +
      "every claim (job, attempt number, lease token, times before and after the statement), every attempt's start and end, every completion, failure, renewal and release sent with its lease token and what the database accepted. " +
      "After each scenario `tests/chaos/helpers/checker.ts` checks the invariants from that log and from `job_history`; during it, `DependencyAuditor` samples the dependency counts. " +
      "Every timing rule is one-sided (it fires only when the order of events proves the overlap), so a slow machine cannot cause a false alarm.",
  );
  lines.push("");
  lines.push(
    "The checker is itself tested: with the claim's `FOR UPDATE SKIP LOCKED` removed from the build, the crash scenario fails with `lease` violations (jobs claimed while another attempt held the lease); " +
      "with the lease-token check removed from the completion statement, the pause scenario fails (`result` and `lease`: the zombie's result recorded). " +
      "Removing only `SKIP LOCKED` (keeping `FOR UPDATE`) does not break a guarantee: claims then wait on each other's row locks and skip rows already taken, which is slower but correct, and the suite passes.",
  );
  lines.push("");
  lines.push("Run it: `npm run test:chaos` (full budget: 20,000 jobs through worker crashes); `CHAOS_BUDGET=short npm run test:chaos` (CI, a few minutes at most); `CHAOS_SEED=<n>` repeats a run's random choices (each scenario prints its seed when it fails and keeps its logs).");
  lines.push("");
  lines.push("## Scenarios and figures of the last run");
  lines.push("");
  lines.push("| scenario | jobs | faults injected | Skein processes | inputs | violations | seconds |");
  lines.push("|---|---:|---|---:|---:|---:|---:|");
  for (const s of SCENARIOS) {
    const r = results[s.key];
    if (!r) {
      lines.push(`| [${s.title}](#${s.key}) | - | not run | - | - | - | - |`);
      continue;
    }
    const faults = Object.entries(r.faults)
      .filter(([, v]) => v)
      .map(([k, v]) => `${fmt(v)} ${k}`)
      .join("; ");
    lines.push(`| [${s.title}](#${s.key}) | ${fmt(r.jobs)} | ${faults || "-"} | ${fmt(r.workerProcesses ?? 0)} | ${fmt(r.inputs ?? 0)} | ${r.violations.length === 0 ? "0" : `**${r.violations.length}**`} | ${Math.round(r.durationSeconds)} |`);
  }
  lines.push("");
  for (const s of SCENARIOS) {
    const r = results[s.key];
    lines.push(`<a id="${s.key}"></a>`);
    lines.push(`### ${s.title}`);
    lines.push("");
    lines.push(`\`tests/chaos/${s.key}.chaos.ts\`. ${s.what}`);
    lines.push("");
    if (!r) {
      lines.push("Not run in the last run.");
      lines.push("");
      continue;
    }
    lines.push(`Budget \`${r.budget}\`${r.seed ? `, seed ${r.seed}` : ""}, ${Math.round(r.durationSeconds)} s.`);
    lines.push("");
    const rows = [...Object.entries(r.faults), ...(r.restarts !== undefined ? [["PostgreSQL restarts", r.restarts]] : []), ...Object.entries(r.figures)];
    if (rows.length > 0) {
      lines.push("| figure | value |");
      lines.push("|---|---:|");
      for (const [k, v] of rows) lines.push(`| ${k.replace(/\|/g, "\\|")} | ${fmt(v)} |`);
      lines.push("");
    }
    lines.push(`Invariant violations: **${r.violations.length}**.`);
    if (r.violations.length > 0) {
      // Alike violations (the same failure in several workers or jobs) are shown once, with a count.
      const groups = new Map();
      for (const v of r.violations) {
        const key = v.split("\n")[0].replace(/worker \S+/g, "worker *").replace(/job "[^"]*"/g, 'job "*"').replace(/attempt \d+/g, "attempt *").replace(/\(w\d+\)/g, "(*)").replace(/worker \*[^:]*:/, "worker *:").replace(/\d{6,}/g, "*").slice(0, 160);
        const g = groups.get(key) || { first: v, n: 0 };
        g.n++;
        groups.set(key, g);
      }
      lines.push("");
      for (const g of [...groups.values()].slice(0, 12)) lines.push(`- ${g.n > 1 ? `(${g.n}x, e.g.) ` : ""}${g.first.split("\n")[0].replace(/\|/g, "\\|").slice(0, 400)}`);
      if (groups.size > 12) lines.push(`- ... and ${groups.size - 12} more kinds`);
    }
    lines.push("");
  }
  return lines.join("\n");
}

module.exports.renderReport = function renderReport() {
  const dir = process.env.CHAOS_RESULTS_DIR || path.join(__dirname, "..", ".results");
  const results = readResults(dir);
  if (Object.keys(results).length === 0) return;
  const complete = SCENARIOS.every((s) => results[s.key] && results[s.key].budget === "full");
  const target = complete || process.env.CHAOS_WRITE_REPORT === "1" ? path.join(ROOT, "docs", "RELIABILITY.md") : path.join(dir, "RELIABILITY.md");
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, render(results) + "\n");
  process.stdout.write(`\nchaos: report written to ${path.relative(ROOT, target)}\n`);
};
