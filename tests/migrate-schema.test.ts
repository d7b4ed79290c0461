import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { createPrismaClient, JobManager, migrate, MigrationError, Worker } from "../src";
import { DEFAULT_MIGRATIONS_DIR } from "../src/db";
import { readMigrations } from "../src/db/migrations";
import { createTestDatabase, type TestDatabase } from "./helpers/db";
import { runCli } from "./helpers/processes";
import { waitFor } from "./helpers/wait";

const shipped = readMigrations().map((m) => m.name);

async function run(url: string, text: string, values: unknown[] = []): Promise<pg.QueryResultRow[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** Skein's tables with their rows, as JSON, for comparing before and after a move. */
async function skeinData(url: string, schema: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const table of ["jobs", "job_history", "job_dependencies", "job_events", "schedules", "tasks", "api_tokens"]) {
    const [row] = await run(url, `SELECT json_agg(t ORDER BY t::text) AS v FROM ${schema}."${table}" t`);
    out[table] = row.v;
  }
  return out;
}

/** A database as Skein 0.1.0 left it: its tables in public, its migrations in public._prisma_migrations, and some work in it. */
async function legacyInstallation(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE TABLE public."_prisma_migrations" (
      "id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ,
      "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
      "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`);
    for (const m of readMigrations()) {
      await client.query("BEGIN");
      await client.query(m.sql);
      await client.query(
        `INSERT INTO public."_prisma_migrations" (id, checksum, migration_name, finished_at, applied_steps_count) VALUES (gen_random_uuid()::text, $1, $2, now(), 1)`,
        [m.checksum, m.name],
      );
      await client.query("COMMIT");
    }
    await client.query(`INSERT INTO public.jobs (id, job_type, name, payload, dependencies, pending_dependencies) VALUES
      ('old-root', 'agent', 'root', '{"agent_name":"mark"}', '[]', 0),
      ('old-leaf', 'agent', 'leaf', '{"agent_name":"mark"}', '["old-root"]', 1)`);
    await client.query(`INSERT INTO public.job_dependencies (job_id, depends_on_id) VALUES ('old-leaf', 'old-root')`);
    await client.query(`INSERT INTO public.job_history (job_id, job_type, name, status, completed_at, result, max_retries, retry_count, attempts,
      priority, run_at, queue, rate_limit_cost, created_at, updated_at)
      VALUES ('old-done', 'agent', 'done', 'completed', now(), '{"kept":true}', 3, 0, 1, 0, now(), 'default', 1, now(), now())`);
    await client.query(`INSERT INTO public.job_events (job_id, event) VALUES ('old-done', 'created')`);
    await client.query(`INSERT INTO public.schedules (id, name, interval_seconds, job_template, next_run_at, paused) VALUES ('s1', 'nightly', 86400, '{"jobType":"agent"}', now() + interval '1 day', true)`);
    await client.query(`INSERT INTO public.tasks (id, name, total_jobs) VALUES ('t1', 'a task', 2)`);
    await client.query(`INSERT INTO public.api_tokens (id, tenant, secret_hash) VALUES ('tok', 'orgA', 'hash')`);
  } finally {
    await client.end();
  }
}

describe("migrating Skein's schema", () => {
  let db: TestDatabase;
  const dirs: string[] = [];
  beforeEach(async () => {
    db = await createTestDatabase({ migrated: false });
  });
  afterEach(async () => {
    await db.drop();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("ten init-worker processes migrating one schema at once apply each migration once", async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, () => runCli("init-worker", ["--database-url", db.url, "--schema", "shared_q", "--json"])),
    );
    for (const r of results) expect(r.code).toBe(0);
    const applied = results.flatMap((r) => (JSON.parse(r.stdout) as { applied: string[] }).applied).sort();
    expect(applied).toEqual(shipped);
    const rows = await run(db.url, `SELECT migration_name FROM shared_q."_prisma_migrations" ORDER BY 1`);
    expect(rows.map((r) => r.migration_name)).toEqual(shipped);
    expect(await run(db.url, `SELECT to_regclass('public._prisma_migrations') AS t`)).toEqual([{ t: null }]);
  });

  it("refuses a Skein 0.1.0 installation in public, changing nothing, and says what to run", async () => {
    await legacyInstallation(db.url);
    const before = await skeinData(db.url, "public");
    const refusal = migrate(db.url);
    await expect(refusal).rejects.toThrow(MigrationError);
    await expect(migrate(db.url)).rejects.toThrow(/init-worker --move-from-public/);
    expect(await run(db.url, `SELECT to_regnamespace('skein') AS n`)).toEqual([{ n: null }]);
    expect(await skeinData(db.url, "public")).toEqual(before);
    const cli = await runCli("run-worker", ["--status", "--database-url", db.url]);
    expect(cli.code).toBe(1);
    expect(cli.stderr.trim().split("\n")).toHaveLength(1);
    expect(cli.stderr).toMatch(/init-worker --move-from-public/);
  });

  it("moves a Skein 0.1.0 installation from public into its schema with nothing lost, and carries on", async () => {
    await legacyInstallation(db.url);
    await run(db.url, `INSERT INTO public."_prisma_migrations" (id, checksum, migration_name, finished_at, applied_steps_count) VALUES ('app-1', 'c0ffee', '20250101000000_app_users', now(), 1)`);
    const before = await skeinData(db.url, "public");
    const moved = await runCli("init-worker", ["--database-url", db.url, "--move-from-public", "--json"]);
    expect(moved.code).toBe(0);
    expect((JSON.parse(moved.stdout) as { moved: string[] }).moved).toEqual(expect.arrayContaining(["jobs", "job_history", "job_dependencies", "schedules"]));
    expect(await skeinData(db.url, "skein")).toEqual(before);
    // Nothing of Skein's is left in public; the application's own record is.
    expect(await run(db.url, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`)).toEqual([{ table_name: "_prisma_migrations" }]);
    expect(await run(db.url, `SELECT migration_name FROM public."_prisma_migrations"`)).toEqual([{ migration_name: "20250101000000_app_users" }]);
    expect((await run(db.url, `SELECT migration_name FROM skein."_prisma_migrations" ORDER BY 1`)).map((r) => r.migration_name)).toEqual(shipped);
    expect((await migrate(db.url)).applied).toEqual([]);

    // The moved jobs run, dependencies and sequences included.
    const prisma = createPrismaClient(db.url);
    const jobManager = new JobManager(prisma);
    const worker = new Worker({ prisma, pollInterval: 0.1, agentRegistry: { mark: async (_p, ctx) => ({ ran: ctx.job.id }) } });
    await worker.start();
    try {
      const leaf = await waitFor(async () => {
        const job = await jobManager.getJob("old-leaf");
        return job?.status === "completed" ? job : undefined;
      }, "the moved leaf job");
      expect(leaf.result).toEqual({ ran: "old-leaf" });
      expect((await jobManager.getJob("old-done"))?.result).toEqual({ kept: true });
      expect((await jobManager.listSchedules()).map((s) => s.name)).toEqual(["nightly"]);
    } finally {
      await worker.stop();
      await prisma.$disconnect();
    }
  });

  it("prints its migrations as one script that an application's own migration can apply, after which migrate() has nothing to do", async () => {
    const printed = await runCli("skein", ["sql", "--schema", "from_script"]);
    expect(printed.code).toBe(0);
    expect(printed.stdout).toMatch(/CREATE SCHEMA IF NOT EXISTS "from_script"/);
    await run(db.url, printed.stdout); // as the application's migration tool would run it
    expect((await migrate(db.url, { schema: "from_script" })).applied).toEqual([]);
    const prisma = createPrismaClient(db.url, { schema: "from_script" });
    try {
      const job = await new JobManager(prisma).createJob({ jobType: "agent", name: "works" });
      expect(job.status).toBe("pending");
    } finally {
      await prisma.$disconnect();
    }
    // Run again, it stops at the first migration already recorded.
    await expect(run(db.url, printed.stdout)).rejects.toThrow(/already recorded in schema from_script/);
  });

  it("prints only the migrations after a given one, for an upgrade", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "skein-older-"));
    dirs.push(dir);
    const older = readdirSync(DEFAULT_MIGRATIONS_DIR).filter((n) => shipped.includes(n)).sort().slice(0, 3);
    for (const name of older) cpSync(path.join(DEFAULT_MIGRATIONS_DIR, name), path.join(dir, name), { recursive: true });
    await migrate(db.url, { schema: "upgraded", migrationsDir: dir });
    const printed = await runCli("skein", ["sql", "--schema", "upgraded", "--after", older[2]]);
    expect(printed.code).toBe(0);
    expect(printed.stdout).not.toMatch(new RegExp(`-- ${older[0]}`));
    await run(db.url, printed.stdout);
    expect((await migrate(db.url, { schema: "upgraded" })).applied).toEqual([]);
    const unknown = await runCli("skein", ["sql", "--after", "20000101000000_nope"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no migration named/);
  });
});
