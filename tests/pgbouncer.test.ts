import { PassThrough } from "node:stream";
import { PrismaPg } from "@prisma/adapter-pg";
import { createLogger, createPrismaClient, JobManager, PrismaClient, Worker } from "../src";
import { databaseFor } from "../src/db/database";
import { sqlState } from "../src/db/database";
import { JobStore } from "../src/db/store";
import { truncateAll, useTestDatabase } from "./helpers/db";
import { pgbouncerBinary, startPgBouncer, type Bouncer } from "./helpers/pgbouncer";
import { runCli } from "./helpers/processes";
import { waitFor } from "./helpers/wait";

// CI installs Debian's pgbouncer (.ci/run) and must run these; elsewhere they need it installed.
const available = pgbouncerBinary() !== undefined || process.env.CI === "true";
if (!available) process.stderr.write("tests/pgbouncer.test.ts: pgbouncer is not installed (apt-get install pgbouncer); skipped\n");

/** A warn-level logger whose lines the test reads. */
function capturedLogger(): { logger: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const stream = new PassThrough();
  stream.on("data", (chunk: Buffer) => lines.push(chunk.toString()));
  return { logger: createLogger({ level: "warn", stream }), lines };
}

(available ? describe : describe.skip)("through PgBouncer in transaction mode", () => {
  const ctx = useTestDatabase();
  let bouncer: Bouncer;
  beforeAll(async () => {
    bouncer = await startPgBouncer(ctx.db.url, { poolSize: 3 });
  });
  afterAll(async () => {
    await bouncer?.stop();
  });
  beforeEach(() => truncateAll(ctx.pool));

  it("named prepared statements fail there (why preparedStatements: false exists)", async () => {
    const prisma = createPrismaClient(bouncer.url(ctx.db.url), { preparedStatements: true, maxConnections: 10 });
    const store = new JobStore(databaseFor(prisma));
    try {
      await new JobManager(prisma).createJobs(Array.from({ length: 50 }, () => ({ jobType: "agent" as const, name: "x" })));
      const outcomes = await Promise.allSettled(Array.from({ length: 60 }, (_, i) => store.claim({ workerId: `w${i % 10}`, limit: 1, leaseSeconds: 60 })));
      const codes = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected").map((o) => sqlState(o.reason));
      expect(codes.length).toBeGreaterThan(0);
      for (const code of codes) expect(["42P05", "26000"]).toContain(code); // "already exists" / "does not exist"
    } finally {
      await prisma.$disconnect();
    }
  });

  it("drains 2,000 jobs, a chain among them, with ?pgbouncer=true and LISTEN on the direct URL", async () => {
    const { logger, lines } = capturedLogger();
    const prisma = createPrismaClient(`${bouncer.url(ctx.db.url)}?pgbouncer=true`, { directUrl: ctx.db.url, maxConnections: 10 });
    const jobManager = new JobManager(prisma);
    const worker = new Worker({ prisma, logger, maxConcurrentJobs: 8, prefetch: 32, pollInterval: 60, agentRegistry: { step: async (_p, ctx2) => ({ step: ctx2.job.name }) } });
    try {
      await jobManager.createJobs(Array.from({ length: 1_990 }, () => ({ jobType: "agent" as const, name: "noop", payload: { agent_name: "noop" } })));
      await jobManager.createJobs(
        Array.from({ length: 10 }, (_, i) => ({ id: `chain-${i}`, jobType: "agent" as const, name: `step ${i}`, payload: { agent_name: "step" }, dependencies: i === 0 ? [] : [`chain-${i - 1}`] })),
      );
      const started = Date.now();
      await worker.start();
      await waitFor(async () => (await ctx.pool.query("SELECT count(*)::int AS n FROM job_history WHERE status = 'completed'")).rows[0].n === 2_000, "2,000 jobs", 60_000);
      const drainMs = Date.now() - started;
      process.stderr.write(`through pgbouncer (transaction mode, 3 server connections): 2,000 jobs in ${drainMs} ms\n`);
      expect((await jobManager.getJob("chain-9"))?.result).toEqual({ step: "step 9" });
      // Idle now, polling every 60 s: a new job starts at once because LISTEN runs on the direct URL.
      const woken = Date.now();
      await jobManager.createJob({ id: "wake", jobType: "agent", name: "wake", payload: { agent_name: "noop" } });
      await waitFor(async () => (await jobManager.getJob("wake"))?.status === "completed", "the woken job", 5_000);
      expect(Date.now() - woken).toBeLessThan(5_000);
    } finally {
      await worker.stop();
      await prisma.$disconnect();
    }
    expect(lines.join("")).not.toMatch(/prepared statement|failed/);
  });

  it("without a direct URL it polls (and says so), and still runs everything", async () => {
    const { logger, lines } = capturedLogger();
    const prisma = createPrismaClient(bouncer.url(ctx.db.url), { preparedStatements: false, maxConnections: 6 });
    const jobManager = new JobManager(prisma);
    const worker = new Worker({ prisma, logger, maxConcurrentJobs: 4, pollInterval: 0.3 });
    try {
      await jobManager.createJobs(Array.from({ length: 200 }, () => ({ jobType: "agent" as const, name: "noop", payload: { agent_name: "noop" } })));
      await worker.start();
      await waitFor(async () => (await ctx.pool.query("SELECT count(*)::int AS n FROM job_history")).rows[0].n === 200, "200 jobs", 30_000);
    } finally {
      await worker.stop();
      await prisma.$disconnect();
    }
    expect(lines.join("")).toMatch(/no direct connection for LISTEN \(give directUrl\); polling instead/);
  });

  it("enqueues inside an application's interactive transaction through the pooler", async () => {
    const app = new PrismaClient({ adapter: new PrismaPg({ connectionString: bouncer.url(ctx.db.url), max: 4 }) });
    const jobManager = new JobManager(app, { schema: "skein" });
    try {
      await expect(
        app.$transaction(async (tx) => {
          await jobManager.createJob({ id: "tx-gone", jobType: "agent", name: "x" }, { tx });
          throw new Error("rolled back");
        }),
      ).rejects.toThrow("rolled back");
      await app.$transaction(async (tx) => {
        await jobManager.createJob({ id: "tx-kept", jobType: "agent", name: "x" }, { tx });
      });
      expect(await jobManager.getJob("tx-gone")).toBeNull();
      expect((await jobManager.getJob("tx-kept"))?.status).toBe("pending");
    } finally {
      await app.$disconnect();
    }
  });

  it("the CLI takes the pooled URL and --direct-database-url", async () => {
    const created = await runCli("skein", ["create-job", "--type", "agent", "--name", "cli", "--id", "via-bouncer", "--json", "--database-url", `${bouncer.url(ctx.db.url)}?pgbouncer=true`, "--direct-database-url", ctx.db.url]);
    expect(created.code).toBe(0);
    const listed = await runCli("skein", ["list", "--json", "--database-url", bouncer.url(ctx.db.url)], { SKEIN_DIRECT_DATABASE_URL: ctx.db.url });
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as Array<{ id: string }>).map((j) => j.id)).toEqual(["via-bouncer"]);
  });
});
