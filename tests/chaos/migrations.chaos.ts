import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { createPrismaClient, JobManager } from "../../src";
import { budget } from "./helpers/budget";
import { checkInvariants } from "./helpers/checker";
import { Cluster, drain, until } from "./helpers/cluster";
import { mixedGraph, prng, seed } from "./helpers/graph";
import { describeViolations, writeReport } from "./helpers/report";
import { createDatabase, dropDatabase, ROOT, sharedAdminUrl } from "./helpers/server";

/**
 * Migrations run by 10 processes at once on a fresh database: `init-worker`
 * processes, `run-worker` processes (which migrate before they start), or
 * both mixed. Every process must succeed; each migration must be applied and
 * recorded exactly once, finished, with the file's checksum; the schema must
 * equal that of a database migrated by one process; and the workers that
 * raced to migrate must then run a graph of jobs correctly.
 */
const B = budget().migrations;
const runSeed = seed();

const migrationsDir = path.join(ROOT, "prisma", "migrations");
const local = readdirSync(migrationsDir, { withFileTypes: true })
  .filter((e) => e.isDirectory() && existsSync(path.join(migrationsDir, e.name, "migration.sql")))
  .map((e) => e.name)
  .sort()
  .map((name) => ({ name, checksum: createHash("sha256").update(readFileSync(path.join(migrationsDir, name, "migration.sql"))).digest("hex") }));

const SCHEMA = `
  SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || COALESCE(column_default, '') || ' ' || is_nullable AS d
    FROM information_schema.columns WHERE table_schema = 'skein'
  UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'skein'
  UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'skein'::regnamespace
  UNION ALL SELECT 'row maintenance_runs ' || task FROM maintenance_runs
  ORDER BY 1`;

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

function initWorker(url: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [path.join(ROOT, "dist", "cli", "init-worker.js"), "--database-url", url, "--json"], {
    cwd: ROOT,
    env: { ...process.env, SKEIN_DATABASE_URL: "", DATABASE_URL: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  return new Promise((resolve) =>
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

const clusters: Cluster[] = [];
const logDirs: string[] = [];
let failed = true;

afterAll(async () => {
  await Promise.all(clusters.map((c) => c.killAll()));
  if (!failed) for (const dir of logDirs) rmSync(dir, { recursive: true, force: true });
  else process.stderr.write(`migrations scenario failed (seed ${runSeed}): logs kept in ${logDirs.join(", ")}\n`);
});

it(`${B.processes} processes migrate a fresh database at once, ${B.rounds} round(s)`, async () => {
  const started = Date.now();
  const rand = prng(runSeed);
  const admin = sharedAdminUrl();
  const reference = await createDatabase(admin, "migref");
  const expectedSchema = (await query<{ d: string }>(reference, SCHEMA)).map((r) => r.d);
  await dropDatabase(reference);
  const violations: string[] = [];
  let processes = 0;
  let jobs = 0;
  const figures = { jobs: 0, attempts: 0, completed: 0, failed: 0, cancelled: 0 };

  for (let round = 1; round <= B.rounds; round++) {
    const url = await createDatabase(admin, `mig${round}`, { migrated: false });
    const logDir = mkdtempSync(path.join(os.tmpdir(), "skein-chaos-mig-"));
    logDirs.push(logDir);
    // Round 1 mixes both kinds (the only round in the short budget); then all init-worker, then all run-worker.
    const workerCount = round % 3 === 1 ? Math.floor(B.processes / 2) : round % 3 === 2 ? 0 : B.processes;
    const cluster = new Cluster({ databaseUrl: url, logDir, concurrency: 4, pollInterval: 0.5 });
    clusters.push(cluster);
    const inits: Array<ReturnType<typeof initWorker>> = [];
    for (let i = 0; i < B.processes; i++) {
      if (i < workerCount) cluster.start(`m${round}-w${i}`);
      else inits.push(initWorker(url));
    }
    processes += B.processes;
    const results = await Promise.all(inits);
    const appliedBy = new Map<string, number>();
    for (const r of results) {
      if (r.code !== 0) {
        violations.push(`migrate: round ${round}: init-worker exited ${r.code}: ${r.stderr.trim().slice(0, 400)}`);
        continue;
      }
      const out = JSON.parse(r.stdout) as { applied: string[]; current: string[] };
      for (const name of out.applied) appliedBy.set(name, (appliedBy.get(name) ?? 0) + 1);
    }
    for (const [name, n] of appliedBy) if (n > 1) violations.push(`migrate: round ${round}: ${name} was applied by ${n} processes`);
    if (workerCount > 0) {
      await until(
        async () => (await query<{ n: number }>(url, "SELECT count(*)::int AS n FROM workers").catch(() => [{ n: 0 }]))[0].n === workerCount,
        `round ${round}: ${workerCount} run-workers to migrate and register`,
        60_000,
      ).catch((error: Error) => {
        violations.push(`migrate: ${error.message}`);
        for (const w of cluster.workers) if (w.child.exitCode !== null) violations.push(`migrate: ${w.id} exited ${w.child.exitCode}: ${cluster.output(w).slice(-400)}`);
      });
    }
    const recorded = await query<{ migration_name: string; checksum: string; finished_at: Date | null; rolled_back_at: Date | null; applied_steps_count: number }>(
      url,
      `SELECT migration_name, checksum, finished_at, rolled_back_at, applied_steps_count FROM "_prisma_migrations" ORDER BY migration_name`,
    );
    const summary = (rows: Array<{ name: string; checksum: string }>) => rows.map((r) => `${r.name} ${r.checksum}`);
    const got = summary(recorded.filter((r) => r.finished_at && !r.rolled_back_at && r.applied_steps_count === 1).map((r) => ({ name: r.migration_name, checksum: r.checksum })));
    if (recorded.length !== local.length || JSON.stringify(got) !== JSON.stringify(summary(local))) {
      violations.push(`migrate: round ${round}: _prisma_migrations holds ${JSON.stringify(recorded)}, expected each of ${JSON.stringify(summary(local))} once, finished`);
    }
    const schema = (await query<{ d: string }>(url, SCHEMA)).map((r) => r.d);
    const missing = expectedSchema.filter((d) => !schema.includes(d));
    const extra = schema.filter((d) => !expectedSchema.includes(d));
    if (missing.length + extra.length > 0) violations.push(`migrate: round ${round}: schema differs from a serial migration: missing ${JSON.stringify(missing)}, extra ${JSON.stringify(extra)}`);

    // The migrated database works: a small graph, run by the racing workers (or two fresh ones).
    if (workerCount === 0) for (let i = 0; i < 2; i++) cluster.start(`m${round}-x${i}`);
    const prisma = createPrismaClient(url, { maxConnections: 2 });
    const created: string[] = [];
    try {
      for (const batch of mixedGraph(300, rand)) {
        await new JobManager(prisma).createJobs(batch);
        created.push(...batch.map((j) => j.id as string));
      }
    } finally {
      await prisma.$disconnect();
    }
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    try {
      const stuck = await drain(pool, `round ${round}: the jobs to finish`, 60_000);
      if (stuck) violations.push(stuck);
      const exits = await cluster.stopAll();
      violations.push(...cluster.survivalViolations());
      for (const e of exits) if (e.code !== 0) violations.push(`exit: ${e.id} exited with ${e.code ?? e.signal} on SIGTERM`);
      const result = await checkInvariants(pool, logDir, created, { expectStatuses: true });
      violations.push(...result.violations.map((v) => `round ${round}: ${v}`));
      jobs += created.length;
      for (const key of Object.keys(figures) as Array<keyof typeof figures>) figures[key] += result.figures[key];
    } finally {
      await pool.end();
    }
    await dropDatabase(url);
  }

  writeReport({
    scenario: "migrations",
    budget: budget().name,
    seed: runSeed,
    startedAt: new Date(started).toISOString(),
    durationSeconds: (Date.now() - started) / 1000,
    jobs,
    faults: { "fresh databases migrated concurrently": B.rounds, "processes migrating at once": B.processes },
    workerProcesses: processes,
    figures: { ...figures, migrations: local.length, rounds: B.rounds },
    violations,
  });
  if (violations.length > 0) throw new Error(describeViolations(violations));
  failed = false;
});
