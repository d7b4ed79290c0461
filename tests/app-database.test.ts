import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { createPrismaClient, JobManager, migrate, PrismaClient, ValidationError, Worker } from "../src";
import { databaseFor } from "../src/db/database";
import { readStatus } from "../src/db/sql/status";
import { createTestDatabase, type TestDatabase } from "./helpers/db";
import { runCli } from "./helpers/processes";
import { TestDriver } from "./helpers/store";
import { waitFor } from "./helpers/wait";

/**
 * Skein in an application's database: its own schema, beside the
 * application's tables and Prisma Migrate history, on the application's own
 * Prisma client and transactions, and two Skein schemas side by side.
 */

/** Runs statements on a plain connection (no search path of Skein's). */
async function run(url: string, text: string, values: unknown[] = []): Promise<pg.QueryResultRow[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** What an application with its own Prisma migrations and tables named like Skein's has in `public`. */
const APPLICATION = `
  CREATE TABLE public."_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0);
  INSERT INTO public."_prisma_migrations" VALUES
    ('0b1f7c3e-0000-4000-8000-000000000001', 'c0ffee', '2025-01-01 00:00:00+00', '20250101000000_app_users', NULL, NULL, '2025-01-01 00:00:00+00', 1),
    ('0b1f7c3e-0000-4000-8000-000000000002', 'decaf', '2025-02-01 00:00:00+00', '20250201000000_app_jobs', NULL, NULL, '2025-02-01 00:00:00+00', 1);
  CREATE TABLE public.users (id serial PRIMARY KEY, email text UNIQUE NOT NULL);
  CREATE TABLE public.jobs (id serial PRIMARY KEY, title text NOT NULL, status text);
  CREATE INDEX jobs_status_idx ON public.jobs (status);
  CREATE TABLE public.workers (id int PRIMARY KEY, name text);
  CREATE TABLE public.tasks (id int PRIMARY KEY, done boolean);
  INSERT INTO public.jobs (title, status) VALUES ('hire a plumber', 'pending'), ('paint the fence', 'running');
  INSERT INTO public.workers VALUES (1, 'Ada');
  INSERT INTO public.tasks VALUES (7, false);`;

/** Everything of the application's that Skein must leave as it was: structure and rows outside schema skein. */
async function applicationSnapshot(url: string): Promise<unknown> {
  const [objects] = await run(
    url,
    `SELECT json_agg(x ORDER BY x) AS v FROM (
       SELECT n.nspname || '.' || c.relname || ':' || c.relkind::text AS x FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'skein%'
       UNION ALL SELECT table_name || '.' || column_name || ' ' || data_type FROM information_schema.columns WHERE table_schema = 'public'
       UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'public') s`,
  );
  const rows = await run(
    url,
    `SELECT (SELECT json_agg(m ORDER BY m.id) FROM public."_prisma_migrations" m) AS migrations,
       (SELECT json_agg(j ORDER BY j.id) FROM public.jobs j) AS jobs,
       (SELECT json_agg(w ORDER BY w.id) FROM public.workers w) AS workers,
       (SELECT json_agg(t ORDER BY t.id) FROM public.tasks t) AS tasks`,
  );
  return { objects: objects.v, rows: rows[0] };
}

/** An application's own Prisma client (not made by createPrismaClient), whose connections search `public` only. */
function applicationClient(url: string): PrismaClient {
  const withPath = new URL(url);
  withPath.searchParams.set("options", "-c search_path=public");
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: withPath.toString(), max: 4 }) });
}

describe("Skein beside an application's tables and migrations", () => {
  let db: TestDatabase;
  let app: PrismaClient;
  beforeAll(async () => {
    db = await createTestDatabase({ migrated: false });
    await run(db.url, APPLICATION);
    app = applicationClient(db.url);
  });
  afterAll(async () => {
    await app?.$disconnect();
    await db?.drop();
  });

  it("migrates into its own schema and leaves the application's migrations and same-named tables byte for byte", async () => {
    const before = await applicationSnapshot(db.url);
    const result = await migrate(db.url);
    expect(result.schema).toBe("skein");
    expect(result.applied.length).toBeGreaterThan(0);
    expect(await applicationSnapshot(db.url)).toEqual(before);
    const skeinTables = await run(db.url, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'skein' ORDER BY 1`);
    expect(skeinTables.map((r) => r.table_name)).toEqual(expect.arrayContaining(["_prisma_migrations", "jobs", "job_history", "workers", "tasks"]));
    // Migrating again changes nothing either.
    expect((await migrate(db.url)).applied).toEqual([]);
    expect(await applicationSnapshot(db.url)).toEqual(before);
  });

  it("enqueues inside the application's own interactive transaction: rolled back, no job; committed, it runs and reads the application's row", async () => {
    const before = await applicationSnapshot(db.url);
    const jobManager = new JobManager(app, { schema: "skein" });
    await expect(
      app.$transaction(async (tx) => {
        await tx.$executeRawUnsafe(`INSERT INTO users (email) VALUES ('rolled@back.example')`);
        await jobManager.createJob({ id: "welcome-rolled-back", jobType: "agent", name: "welcome", payload: { agent_name: "welcome", parameters: { email: "rolled@back.example" } } }, { tx });
        throw new Error("the application changed its mind");
      }),
    ).rejects.toThrow("changed its mind");
    expect(await jobManager.getJob("welcome-rolled-back")).toBeNull();

    await app.$transaction(async (tx) => {
      await tx.$executeRawUnsafe(`INSERT INTO users (email) VALUES ('ada@example.com')`);
      // With a dependency too: the transactional path locks and counts (search_path of this connection is public only).
      const first = await jobManager.createJob({ id: "prepare", jobType: "agent", name: "prepare", payload: { agent_name: "noop" } }, { tx });
      await jobManager.createJob({ id: "welcome", jobType: "agent", name: "welcome", payload: { agent_name: "welcome", parameters: { email: "ada@example.com" } }, dependencies: [first.id] }, { tx });
    });
    const seen: string[] = [];
    const worker = new Worker({
      prisma: app,
      schema: "skein",
      directUrl: db.url,
      pollInterval: 0.2,
      agentRegistry: {
        welcome: async (params) => {
          // The executor reads the application's row, committed with the job.
          const rows = await app.$queryRawUnsafe<Array<{ id: number }>>(`SELECT id FROM users WHERE email = $1`, (params as { email: string }).email);
          seen.push(`${(params as { email: string }).email}#${rows.length}`);
          return { welcomed: rows.length };
        },
      },
    });
    await worker.start();
    try {
      const done = await waitFor(async () => {
        const job = await jobManager.getJob("welcome");
        return job?.status === "completed" ? job : undefined;
      }, "the committed job to run");
      expect(done.result).toEqual({ welcomed: 1 });
      expect(seen).toEqual(["ada@example.com#1"]);
    } finally {
      await worker.stop();
    }
    // Skein's jobs went to skein.jobs; the application's own `jobs`, `workers`, `tasks` and history did not move.
    expect(await applicationSnapshot(db.url)).toEqual(before);
    const [{ n }] = await run(db.url, `SELECT count(*)::int AS n FROM skein.job_history WHERE job_id IN ('prepare', 'welcome')`);
    expect(n).toBe(2);
  });

  it("refuses bad schema names and a schema its client disagrees with, naming the field", async () => {
    for (const bad of ["Skein", "has space", "1st", "x".repeat(49), "public", "pg_skein", "information_schema", ""]) {
      expect(() => createPrismaClient(db.url, { schema: bad })).toThrow(ValidationError);
    }
    expect(() => new JobManager(app, { schema: 'sk"ein' })).toThrow(/schema: must be a PostgreSQL schema name/);
    const alpha = createPrismaClient(db.url, { schema: "alpha_one" });
    try {
      expect(() => new JobManager(alpha, { schema: "beta_one" })).toThrow(/client was made for schema "alpha_one"/);
      expect(() => createPrismaClient(`${db.url}?schema=alpha_one`, { schema: "beta_one" })).toThrow(/\?schema=/);
    } finally {
      await alpha.$disconnect();
    }
    const cli = await runCli("skein", ["list", "--database-url", db.url, "--schema", "Not-Valid"]);
    expect(cli.code).toBe(2);
    expect(cli.stderr.trim().split("\n")).toHaveLength(1);
    expect(cli.stderr).toMatch(/--schema: must be a PostgreSQL schema name/);
  });
});

describe("two Skein schemas in one database", () => {
  let db: TestDatabase;
  const clients: Record<"alpha" | "beta", ReturnType<typeof createPrismaClient>> = {} as never;
  const managers: Record<"alpha" | "beta", JobManager> = {} as never;
  beforeAll(async () => {
    db = await createTestDatabase({ migrated: false });
    for (const schema of ["alpha", "beta"] as const) {
      await migrate(db.url, { schema });
      clients[schema] = createPrismaClient(db.url, { schema });
      managers[schema] = new JobManager(clients[schema]);
    }
  });
  afterAll(async () => {
    for (const client of Object.values(clients)) await client.$disconnect();
    await db?.drop();
  });

  it("keeps jobs apart: a worker of one never runs the other's, and the typed client reads its own schema", async () => {
    await managers.alpha.createJob({ id: "only-alpha", jobType: "agent", name: "a", payload: { agent_name: "mark" } });
    await managers.beta.createJob({ id: "only-beta", jobType: "agent", name: "b", payload: { agent_name: "mark" } });
    expect(await managers.beta.getJob("only-alpha")).toBeNull();
    expect(await clients.alpha.job.count()).toBe(1);
    expect((await clients.beta.job.findMany()).map((j) => j.id)).toEqual(["only-beta"]);
    const ran: string[] = [];
    const worker = new Worker({ prisma: clients.beta, pollInterval: 0.1, agentRegistry: { mark: async (_p, ctx) => void ran.push(ctx.job.id) } });
    await worker.start();
    try {
      await waitFor(async () => (await managers.beta.getJob("only-beta"))?.status === "completed", "beta's job");
      await new Promise((resolve) => setTimeout(resolve, 500));
    } finally {
      await worker.stop();
    }
    expect(ran).toEqual(["only-beta"]);
    expect((await managers.alpha.getJob("only-alpha"))?.status).toBe("pending");
  });

  it("wakes only its own workers: each schema notifies on its own channels", async () => {
    const listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    const heard: string[] = [];
    listener.on("notification", (n) => heard.push(n.channel));
    try {
      for (const channel of ["alpha_jobs_ready", "beta_jobs_ready", "alpha_jobs_cancelled", "beta_jobs_cancelled"]) await listener.query(`LISTEN ${channel}`);
      await managers.alpha.createJob({ id: "wake-alpha", jobType: "agent", name: "w" });
      await managers.alpha.cancelJob("wake-alpha");
      await waitFor(async () => heard.includes("alpha_jobs_cancelled"), "alpha's notifications");
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect([...new Set(heard)].sort()).toEqual(["alpha_jobs_cancelled", "alpha_jobs_ready"]);
    } finally {
      await listener.end();
    }
  });

  it("prunes and reports each schema's own jobs only", async () => {
    for (const schema of ["alpha", "beta"] as const) {
      const driver = new TestDriver(clients[schema]);
      await managers[schema].createJob({ id: `old-${schema}`, jobType: "agent", name: "old" });
      await driver.complete(`old-${schema}`);
      await run(db.url, `UPDATE ${schema}.job_history SET completed_at = now() - interval '40 days'`);
    }
    expect(await managers.beta.cleanupOldHistory(30)).toBeGreaterThan(0);
    expect((await managers.beta.getJob("old-beta"))).toBeNull();
    expect((await managers.alpha.getJob("old-alpha"))?.status).toBe("completed");

    const alphaStatus = await readStatus(databaseFor(clients.alpha));
    const betaStatus = await readStatus(databaseFor(clients.beta));
    expect(alphaStatus.counts.completed).toBeGreaterThan(0);
    expect(betaStatus.counts.completed).toBe(0);
    const cli = await runCli("run-worker", ["--status", "--json", "--database-url", db.url, "--schema", "beta"]);
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.stdout).counts).toEqual(betaStatus.counts);
    const viaEnv = await runCli("run-worker", ["--status", "--json", "--database-url", db.url], { SKEIN_SCHEMA: "alpha" });
    expect(JSON.parse(viaEnv.stdout).counts).toEqual(alphaStatus.counts);
  });
});
