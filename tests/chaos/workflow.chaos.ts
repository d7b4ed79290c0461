import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { createPrismaClient, JobManager, type PrismaClient } from "../../src";
import { budget } from "./helpers/budget";
import { Cluster, delay, drain } from "./helpers/cluster";
import { prng, seed } from "./helpers/graph";
import { describeViolations, writeReport } from "./helpers/report";
import { createDatabase, dropDatabase, sharedAdminUrl } from "./helpers/server";

/**
 * Durable workflows through worker crashes. Workflow jobs (five durable
 * steps; after the second, two delegated children they wait for; after the
 * fourth, half of them sleep) run on several worker processes while a
 * controller kill -9s a random worker every few seconds and starts another.
 * The invariant (`workflow`): no completed step or child runs twice. A step
 * whose result was stored by attempt k never starts in a later attempt; each
 * parent has exactly its two children (a retried or resumed parent
 * re-attached to them), and a child never starts again after the attempt
 * whose completion was recorded; every workflow completes with the results
 * its steps and children stored.
 */
const B = budget().workflow;
const runSeed = seed();

let url: string;
let pool: pg.Pool;
let prisma: PrismaClient;
let logDir: string;
let cluster: Cluster | undefined;
let failed = true;

beforeAll(async () => {
  url = await createDatabase(sharedAdminUrl(), "workflow");
  pool = new pg.Pool({ connectionString: url, max: 4 });
  prisma = createPrismaClient(url);
  logDir = mkdtempSync(path.join(os.tmpdir(), "skein-chaos-workflow-"));
});

afterAll(async () => {
  await cluster?.killAll();
  await prisma?.$disconnect();
  await pool?.end();
  if (failed) {
    process.stderr.write(`workflow scenario failed (seed ${runSeed}): execution logs kept in ${logDir}, database ${url}\n`);
  } else {
    rmSync(logDir, { recursive: true, force: true });
    await dropDatabase(url);
  }
});

interface TraceLine {
  e: string;
  j: string;
  s?: string;
  ph: "start" | "end";
  n: number;
}

function traces(): TraceLine[] {
  return readdirSync(logDir)
    .filter((f) => f.endsWith(".jsonl"))
    .flatMap((f) => readFileSync(path.join(logDir, f), "utf8").split("\n"))
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as TraceLine)
    .filter((t) => t.e === "step" || t.e === "leaf");
}

/** The invariant's violations, from the traces and the database. */
async function check(flows: string[]): Promise<{ violations: string[]; figures: Record<string, number> }> {
  const violations: string[] = [];
  const all = traces();
  const { rows: parents } = await pool.query<{ id: string; status: string; result: unknown; attempts: number }>("SELECT job_id AS id, status, result, attempts FROM job_history WHERE job_id = ANY($1)", [flows]);
  const { rows: steps } = await pool.query<{ job_id: string; name: string; attempt: number }>("SELECT job_id, name, attempt FROM job_steps WHERE job_id = ANY($1)", [flows]);
  const { rows: kids } = await pool.query<{ id: string; parent_id: string; delegation_key: string; status: string; attempts: number; result: unknown }>(
    "SELECT job_id AS id, parent_id, delegation_key, status, attempts, result FROM job_history WHERE parent_id = ANY($1) UNION ALL SELECT id, parent_id, delegation_key, status, attempts, result FROM jobs WHERE parent_id = ANY($1)",
    [flows],
  );
  const stored = new Map(steps.map((s) => [`${s.job_id} ${s.name}`, s.attempt]));
  let rerunSteps = 0;
  for (const t of all.filter((x) => x.e === "step" && x.ph === "start")) {
    const at = stored.get(`${t.j} ${t.s}`);
    if (at === undefined) violations.push(`workflow: step ${t.s} of ${t.j} ran (attempt ${t.n}) but was never stored`);
    else if (t.n > at) violations.push(`workflow: step ${t.s} of ${t.j} stored by attempt ${at} started again in attempt ${t.n}`);
    else if (t.n < at) rerunSteps++; // a crash before its result was stored: it ran again, as it must
  }
  const byParent = new Map<string, typeof kids>();
  for (const k of kids) byParent.set(k.parent_id, [...(byParent.get(k.parent_id) ?? []), k]);
  const kidAttempts = new Map(kids.map((k) => [k.id, k]));
  for (const t of all.filter((x) => x.e === "leaf" && x.ph === "start")) {
    const k = kidAttempts.get(t.j);
    if (k && k.status === "completed" && t.n > k.attempts) violations.push(`workflow: child ${t.j} completed in attempt ${k.attempts} started again in attempt ${t.n}`);
  }
  for (const id of flows) {
    const own = byParent.get(id) ?? [];
    if (own.length !== 2 || new Set(own.map((k) => k.delegation_key)).size !== 2) violations.push(`workflow: ${id} has ${own.length} children (keys ${own.map((k) => k.delegation_key).join(", ")}), not its 2`);
    const parent = parents.find((p) => p.id === id);
    const expected = [10, 20, 100, 200, 30, 40, 50];
    if (!parent) violations.push(`workflow: ${id} did not finish`);
    else if (parent.status !== "completed" || JSON.stringify(parent.result) !== JSON.stringify(expected)) {
      violations.push(`workflow: ${id} ended ${parent.status} with ${JSON.stringify(parent.result)}, not ${JSON.stringify(expected)}`);
    }
    for (const s of ["s1", "s2", "s3", "s4", "s5"]) if (!stored.has(`${id} ${s}`)) violations.push(`workflow: ${id} has no stored ${s}`);
  }
  const resumed = parents.reduce((n, p) => n + p.attempts - 1, 0);
  return {
    violations,
    figures: {
      workflows: flows.length,
      "children delegated": kids.length,
      "steps stored": steps.length,
      "steps run again after a crash lost them before they were stored": rerunSteps,
      "child attempts (crashes make more than one)": all.filter((x) => x.e === "leaf" && x.ph === "start").length,
      "parent attempts after the first (resumes after waiting or sleeping, and crashes)": resumed,
    },
  };
}

it(`${B.flows} durable workflows survive ${B.workers} workers being kill -9'd every few seconds: no completed step or child runs twice`, async () => {
  const started = Date.now();
  const rand = prng(runSeed);
  const jobManager = new JobManager(prisma);
  cluster = new Cluster({ databaseUrl: url, logDir, concurrency: B.concurrency, pollInterval: 0.5 });
  const c = cluster;
  for (let i = 0; i < B.workers; i++) c.start();
  c.replaceDeadWorkers(20);
  let stopping = false;
  const controller = (async () => {
    while (!stopping && Date.now() < started + B.deadlineMs) {
      await delay(B.killEveryMs[0] + rand() * (B.killEveryMs[1] - B.killEveryMs[0]));
      if (stopping) break;
      const live = c.live();
      if (live.length === 0) continue;
      await c.kill(live[Math.floor(rand() * live.length)]);
      c.start();
    }
  })();
  const flows = Array.from({ length: B.flows }, (_, i) => `flow-${i}`);
  for (let i = 0; i < flows.length; i += 20) {
    await jobManager.createJobs(
      flows.slice(i, i + 20).map((id, k) => ({ id, jobType: "agent" as const, name: "flow", payload: { agent_name: "flow", parameters: { steps: 5, sleepMs: (i + k) % 2 === 0 ? 300 : 0 } }, maxRetries: 50 })),
    );
    await delay(100);
  }
  const stuck = await drain(pool, `all ${B.flows} workflows and their children to finish`, Math.max(10_000, started + B.deadlineMs - Date.now()));
  stopping = true;
  await controller;
  const exits = await c.stopAll();
  const result = await check(flows);
  const violations = [...(stuck ? [stuck] : []), ...c.survivalViolations(), ...exits.filter((e) => e.code !== 0).map((e) => `exit: worker ${e.id} exited with ${e.code ?? e.signal} on SIGTERM`), ...result.violations];
  const kills = c.faults.filter((f) => f.kind === "kill -9").length;
  writeReport({
    scenario: "workflow",
    budget: budget().name,
    seed: runSeed,
    startedAt: new Date(started).toISOString(),
    durationSeconds: (Date.now() - started) / 1000,
    jobs: B.flows * 3,
    faults: { "kill -9": kills },
    workerProcesses: c.workers.length,
    figures: result.figures,
    violations,
  });
  if (violations.length > 0) throw new Error(describeViolations(violations));
  expect(kills).toBeGreaterThan(0);
  failed = false;
});
