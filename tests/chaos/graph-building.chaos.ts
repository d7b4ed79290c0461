import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { budget } from "./helpers/budget";
import { checkInvariants, DependencyAuditor } from "./helpers/checker";
import { Cluster, drain } from "./helpers/cluster";
import { seed } from "./helpers/graph";
import { describeViolations, writeReport } from "./helpers/report";
import { createDatabase, dropDatabase, ROOT, sharedAdminUrl } from "./helpers/server";

/**
 * Concurrent graph building. Many client processes create overlapping graphs
 * at once: each batch's jobs depend on each other and on jobs other clients
 * just created, jobs that are running or completing right now, and jobs
 * already archived (completed, failed or cancelled), while worker processes
 * complete them. Some jobs are doomed, so cancellations race with creation
 * too. Checked: no create call fails, every job finishes as its graph
 * dictates (a job on a failed dependency is cancelled, at creation or later),
 * no child starts before its dependencies complete and none is left blocked,
 * and pending_dependencies matches the edges in every sample.
 */
const B = budget().graphs;
const runSeed = seed();

let url: string;
let pool: pg.Pool;
let logDir: string;
let cluster: Cluster | undefined;
let failed = true;
const builders: Array<ReturnType<typeof spawn>> = [];

beforeAll(async () => {
  url = await createDatabase(sharedAdminUrl(), "graphs");
  pool = new pg.Pool({ connectionString: url, max: 3 });
  logDir = mkdtempSync(path.join(os.tmpdir(), "skein-chaos-graphs-"));
});

afterAll(async () => {
  for (const b of builders) if (b.exitCode === null && b.signalCode === null) b.kill("SIGKILL");
  await cluster?.killAll();
  await pool?.end();
  if (failed) process.stderr.write(`graph-building scenario failed (seed ${runSeed}): logs kept in ${logDir}, database ${url}\n`);
  else {
    rmSync(logDir, { recursive: true, force: true });
    await dropDatabase(url);
  }
});

it(`${B.builders} clients build overlapping graphs while ${B.workers} workers complete their dependencies`, async () => {
  const started = Date.now();
  cluster = new Cluster({ databaseUrl: url, logDir, concurrency: 8, pollInterval: 1 });
  for (let i = 0; i < B.workers; i++) cluster.start();
  const auditor = new DependencyAuditor(pool);
  auditor.start(1000);
  // A few seed jobs, so the first round of every client has something to depend on.
  await pool.query(
    `INSERT INTO jobs (id, job_type, name, payload) SELECT 'seed-' || i, 'agent', 'seed', '{"agent_name":"work","parameters":{"ms":20}}' FROM generate_series(1, 20) i`,
  );

  const exits = await Promise.all(
    Array.from({ length: B.builders }, (_, i) => {
      const child = spawn(process.execPath, [path.join(ROOT, "tests", "chaos", "fixtures", "builder.js")], {
        cwd: ROOT,
        env: {
          ...process.env,
          CHAOS_DB_URL: url,
          CHAOS_BUILDER: String(i),
          CHAOS_ROUNDS: String(B.rounds),
          CHAOS_BATCH: String(B.batch),
          CHAOS_SEED: String(runSeed + i),
          CHAOS_LOG_DIR: logDir,
        },
        stdio: ["ignore", "ignore", "pipe"],
      });
      builders.push(child);
      let stderr = "";
      child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      const timer = setTimeout(() => child.kill("SIGKILL"), B.deadlineMs);
      return new Promise<{ i: number; code: number | null; stderr: string }>((resolve) =>
        child.on("exit", (code) => {
          clearTimeout(timer);
          resolve({ i, code, stderr });
        }),
      );
    }),
  );
  const violations: string[] = [];
  for (const e of exits) if (e.code !== 0) violations.push(`builder: client ${e.i} exited with ${e.code}: ${e.stderr.slice(-500)}`);

  const created: string[] = Array.from({ length: 20 }, (_, i) => `seed-${i + 1}`);
  let singles = 0;
  let batches = 0;
  for (const file of readdirSync(logDir).filter((f) => /^builder-\d+\.log$/.test(f))) {
    for (const line of readFileSync(path.join(logDir, file), "utf8").split("\n")) {
      if (!line.trim()) continue;
      const ev = JSON.parse(line) as { e: string; ids?: string[]; how?: string; err?: string; builder: number };
      if (ev.e === "created") {
        created.push(...(ev.ids ?? []));
        if (ev.how === "createJob") singles++;
        else batches++;
      } else if (ev.e === "create-error" || ev.e === "crash") violations.push(`builder: client ${ev.builder}: ${ev.err}`);
    }
  }

  const stuck = await drain(pool, "every job to finish", Math.max(10_000, started + B.deadlineMs - Date.now()));
  await auditor.stop();
  if (stuck) violations.push(stuck);
  await auditor.sample();
  const stops = await cluster.stopAll();
  violations.push(...cluster.survivalViolations());
  for (const e of stops) if (e.code !== 0) violations.push(`exit: worker ${e.id} exited with ${e.code ?? e.signal} on SIGTERM`);
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM job_history WHERE status = 'cancelled' AND attempts = 0 AND started_at IS NULL`,
  );

  const result = await checkInvariants(pool, logDir, created, { expectStatuses: true, extraViolations: [...violations, ...auditor.violations] });
  writeReport({
    scenario: "graph-building",
    budget: budget().name,
    seed: runSeed,
    startedAt: new Date(started).toISOString(),
    durationSeconds: (Date.now() - started) / 1000,
    jobs: created.length,
    faults: { "concurrent client processes": B.builders },
    workerProcesses: cluster.workers.length,
    figures: {
      ...result.figures,
      "createJobs calls": batches,
      "createJob calls": singles,
      "jobs cancelled before they ever ran": rows[0].n,
      "dependency samples": auditor.samples,
    },
    violations: result.violations,
  });
  if (result.violations.length > 0) throw new Error(describeViolations(result.violations));
  expect(created.length).toBe(20 + B.builders * B.rounds * B.batch);
  failed = false;
});
