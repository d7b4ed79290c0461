import { createPrismaClient, DuplicateJobIdError, JobManager, JobStatus, JobType, ValidationError } from "../src";
import { TestDriver } from "./helpers/store";
import { truncateAll, useTestDatabase } from "./helpers/db";

const ctx = useTestDatabase();
beforeEach(() => truncateAll(ctx.pool));

describe("JobManager: creating and reading jobs", () => {
  it("creates a job with defaults and reads it back", async () => {
    const job = await ctx.jobManager.createJob({
      jobType: JobType.AGENT,
      name: "load",
      description: "load the data",
      payload: { agent_name: "loader", parameters: { file: "data.csv" } },
    });
    expect(job.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(job).toMatchObject({
      jobType: "agent",
      name: "load",
      description: "load the data",
      status: JobStatus.PENDING,
      maxRetries: 3,
      retryCount: 0,
      priority: 0,
      dependencies: [],
      pendingDependencies: 0,
      archived: false,
      result: null,
    });
    expect(await ctx.jobManager.getJob(job.id)).toEqual(job);
  });

  it("stores caller-supplied ids, payloads and options faithfully", async () => {
    const id = `it's "quoted"; DROP TABLE jobs; -- ü 日本 🎉`;
    const payload = { nested: { list: [1, 2.5, null, true, "x"], empty: {} }, unicode: "ñ \u2028 🎉" };
    const runAt = new Date(Date.now() + 3_600_000);
    const job = await ctx.jobManager.createJob({ id, jobType: JobType.QUERY, name: "q", payload, maxRetries: 0, priority: 7, runAt, timeoutSeconds: 30 });
    const read = await ctx.jobManager.getJob(id);
    expect(read).toEqual(job);
    expect(read).toMatchObject({ id, payload, maxRetries: 0, priority: 7, timeoutSeconds: 30 });
    expect(read?.runAt.toISOString()).toBe(runAt.toISOString());
  });

  it("returns null for an unknown id", async () => {
    expect(await ctx.jobManager.getJob("no-such-job")).toBeNull();
  });

  it.each([
    ["an unknown job type", { jobType: "shell", name: "x" }, "jobType"],
    ["an empty name", { jobType: "agent", name: "  " }, "name"],
    ["negative retries", { jobType: "agent", name: "x", maxRetries: -1 }, "maxRetries"],
    ["fractional retries", { jobType: "agent", name: "x", maxRetries: 1.5 }, "maxRetries"],
    ["absurd priority", { jobType: "agent", name: "x", priority: 1e12 }, "priority"],
    ["a function in the payload", { jobType: "agent", name: "x", payload: { f: () => 1 } }, "payload.f"],
    ["a BigInt in the payload", { jobType: "agent", name: "x", payload: { n: BigInt(1) } }, "payload.n"],
    ["NaN in the payload", { jobType: "agent", name: "x", payload: { n: NaN } }, "payload.n"],
    ["a Date in the payload", { jobType: "agent", name: "x", payload: { d: new Date() } }, "payload.d"],
    ["a NUL character", { jobType: "agent", name: "x", payload: { s: "a\u0000b" } }, "payload.s"],
    ["a lone surrogate", { jobType: "agent", name: "x\uD800" }, "name"],
    ["an array payload", { jobType: "agent", name: "x", payload: [1] }, "payload"],
    ["an invalid runAt", { jobType: "agent", name: "x", runAt: "not a date" }, "runAt"],
    ["a zero timeout", { jobType: "agent", name: "x", timeoutSeconds: 0 }, "timeoutSeconds"],
    ["an empty id", { id: "", jobType: "agent", name: "x" }, "id"],
  ])("rejects %s with a ValidationError naming the field, writing nothing", async (_what, input, field) => {
    const error = await ctx.jobManager.createJob(input as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe(field);
    const { rows } = await ctx.pool.query("SELECT count(*)::int AS n FROM jobs");
    expect(rows[0].n).toBe(0);
  });

  it("rejects a circular payload and deep nesting", async () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expect(ctx.jobManager.createJob({ jobType: "agent", name: "x", payload: circular as never })).rejects.toThrow(/circular/);
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let i = 0; i < 200; i++) deep = (deep.next = {}) as Record<string, unknown>;
    await expect(ctx.jobManager.createJob({ jobType: "agent", name: "x", payload: root as never })).rejects.toThrow(/deeper/);
  });

  it("rejects duplicate ids, within a call and against existing jobs (live or archived)", async () => {
    await expect(
      ctx.jobManager.createJobs([
        { id: "a", jobType: "agent", name: "a" },
        { id: "a", jobType: "agent", name: "again" },
      ]),
    ).rejects.toThrow(DuplicateJobIdError);
    await ctx.jobManager.createJob({ id: "a", jobType: "agent", name: "a" });
    await expect(ctx.jobManager.createJob({ id: "a", jobType: "agent", name: "a" })).rejects.toThrow(DuplicateJobIdError);
    await new TestDriver(ctx.prisma).complete("a");
    await expect(ctx.jobManager.createJob({ id: "a", jobType: "agent", name: "a" })).rejects.toThrow(/duplicate job id: "a"/);
    // Only supplied ids are looked up: mixed with generated ones, on both insert paths (with and without dependencies).
    await ctx.jobManager.createJob({ id: "dep", jobType: "agent", name: "dep" });
    for (const dependencies of [[], ["dep"]]) {
      await expect(
        ctx.jobManager.createJobs([
          { jobType: "agent", name: "generated" },
          { id: "a", jobType: "agent", name: "a", dependencies },
        ]),
      ).rejects.toThrow(/duplicate job id: "a"/);
    }
    expect((await ctx.pool.query("SELECT 1 FROM jobs WHERE name = 'generated'")).rowCount).toBe(0);
  });

  it("a batch with one taken id writes nothing; racing creators of one id: one wins, the others get DuplicateJobIdError", async () => {
    await ctx.jobManager.createJob({ id: "taken", jobType: "agent", name: "first" });
    await expect(
      ctx.jobManager.createJobs([
        { id: "new-1", jobType: "agent", name: "n" },
        { id: "taken", jobType: "agent", name: "again" },
        { id: "new-2", jobType: "agent", name: "n" },
      ]),
    ).rejects.toThrow(/duplicate job id: "taken"/);
    expect(await ctx.jobManager.getJob("new-1")).toBeNull();
    expect(await ctx.jobManager.getJob("new-2")).toBeNull();
    const outcomes = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => ctx.jobManager.createJob({ id: "raced", jobType: "agent", name: `racer ${i}` })));
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    for (const o of outcomes) if (o.status === "rejected") expect(o.reason).toBeInstanceOf(DuplicateJobIdError);
    expect((await ctx.pool.query("SELECT 1 FROM jobs WHERE id = 'raced'")).rowCount).toBe(1);
  });

  it("what createJobs returns is exactly what getJob reads back, with and without dependencies", async () => {
    const plain = await ctx.jobManager.createJobs([
      { id: "p1", jobType: "agent", name: "plain", payload: { agent_name: "x", parameters: { n: 1.5, list: [1, "two", null], nested: { b: 2, a: 1 } } } },
      { id: "p2", jobType: "query", name: "later", description: "d", payload: { query: "q" }, runAt: new Date(Date.now() + 3_600_000), priority: 7, maxRetries: 0, timeoutSeconds: 30, queue: "reports", tenant: "acme", tags: ["gpu"], rateLimitKey: "openai", rateLimitCost: 3, concurrencyKey: "c-1" },
    ]);
    const linked = await ctx.jobManager.createJobs([
      { id: "d1", jobType: "agent", name: "child", dependencies: ["p1"] },
      { id: "d2", jobType: "query", name: "rich child", description: "d", payload: { query: "q", n: [1, { a: null }] }, dependencies: [{ id: "p2", onFailure: "ignore" }, "d1"], runAt: new Date(Date.now() + 60_000), priority: -3, maxRetries: 5, timeoutSeconds: 9, queue: "reports", tenant: "acme", tags: ["z", "gpu"], rateLimitKey: "openai", rateLimitCost: 2, concurrencyKey: "c-2" },
    ]);
    for (const job of [...plain, ...linked]) expect(await ctx.jobManager.getJob(job.id)).toEqual(job);
  });

  it("the jobs createJobs returns share no objects with the caller's input", async () => {
    const payload = { agent_name: "x", parameters: { list: [1, 2] } };
    const tags = ["b", "a"];
    const [plain] = await ctx.jobManager.createJobs([{ id: "own1", jobType: "agent", name: "n", payload, tags }]);
    const [linked] = await ctx.jobManager.createJobs([{ id: "own2", jobType: "agent", name: "n", payload, tags, dependencies: ["own1"] }]);
    payload.parameters.list.push(3);
    payload.agent_name = "changed";
    tags.push("c");
    for (const job of [plain, linked]) {
      expect(job.payload).toEqual({ agent_name: "x", parameters: { list: [1, 2] } });
      expect(job.tags).toEqual(["a", "b"]);
    }
  });

  it("createJobs is all or nothing", async () => {
    await expect(
      ctx.jobManager.createJobs([
        { id: "ok-1", jobType: "agent", name: "fine" },
        { id: "ok-2", jobType: "agent", name: "fine", dependencies: ["missing"] },
      ]),
    ).rejects.toThrow(/unknown dependency id: "missing"/);
    expect(await ctx.jobManager.getJob("ok-1")).toBeNull();
  });

  it("lists ready jobs by priority, then run time", async () => {
    const past = (s: number) => new Date(Date.now() - s * 1000);
    await ctx.jobManager.createJobs([
      { id: "low-old", jobType: "agent", name: "x", priority: 0, runAt: past(30) },
      { id: "high", jobType: "agent", name: "x", priority: 5, runAt: past(1) },
      { id: "low-new", jobType: "agent", name: "x", priority: 0, runAt: past(10) },
      { id: "later", jobType: "agent", name: "x", runAt: new Date(Date.now() + 60_000) },
      { id: "blocked", jobType: "agent", name: "x", dependencies: ["high"] },
    ]);
    const ready = await ctx.jobManager.getReadyJobs({ limit: 10 });
    expect(ready.map((j) => j.id)).toEqual(["high", "low-old", "low-new"]);
    expect((await ctx.jobManager.getReadyJobs({ limit: 1 })).map((j) => j.id)).toEqual(["high"]);
  });

  it("creates jobs one or a few at a time on one cached plan, also after the tables grew and were analysed", async () => {
    await ctx.pool.query("VACUUM ANALYZE jobs, job_history");
    const prisma = createPrismaClient(ctx.db.url, { maxConnections: 1 }); // one session: its prepared statements are the ones read below
    try {
      const manager = new JobManager(prisma, { refreshStatistics: false });
      const plans = () =>
        prisma.$queryRawUnsafe<Array<{ generic: number; custom: number }>>(
          `SELECT generic_plans::int AS generic, custom_plans::int AS custom FROM pg_prepared_statements WHERE statement LIKE '%INSERT INTO "skein"."jobs"%'`,
        );
      // PostgreSQL plans the first five executions for their values, then settles on a generic plan.
      for (let i = 0; i < 10; i++) await manager.createJob({ jobType: JobType.AGENT, name: "one" });
      expect(await plans()).toEqual([{ generic: 5, custom: 5 }]);
      await manager.createJobs(Array.from({ length: 10_000 }, () => ({ jobType: JobType.AGENT, name: "fill" }))); // no check of its own racing the ANALYZE below
      await ctx.pool.query("ANALYZE jobs, job_history");
      // Planned again for the new statistics (PostgreSQL compares with one new custom plan), then generic again:
      // calls do not pay for planning. (With the ids array in sight of the planner, 32 of these 40 were planned afresh.)
      for (let i = 0; i < 20; i++) await manager.createJob({ jobType: JobType.AGENT, name: "one" });
      for (let i = 0; i < 20; i++) await manager.createJobs(Array.from({ length: 3 }, () => ({ jobType: JobType.AGENT, name: "three" })));
      const [after] = await plans();
      expect(after.custom).toBeLessThanOrEqual(6);
      expect(after.generic + after.custom).toBe(51); // 10 + the fill + 40
    } finally {
      await prisma.$disconnect();
    }
  });
});

describe("JobManager: history, cancel, retry, cleanup", () => {
  it("archives finished jobs and lists history by status", async () => {
    const driver = new TestDriver(ctx.prisma);
    await ctx.jobManager.createJobs([
      { id: "done", jobType: "agent", name: "x" },
      { id: "bad", jobType: "agent", name: "x" },
    ]);
    await driver.complete("done", { rows: 3 });
    await driver.failFinally("bad", "it broke");
    const done = await ctx.jobManager.getJob("done");
    expect(done).toMatchObject({ status: "completed", result: { rows: 3 }, archived: true, attempts: 1 });
    expect(done?.durationSeconds).toBeGreaterThanOrEqual(0);
    expect(done?.completedAt).toBeInstanceOf(Date);
    expect((await ctx.jobManager.getJobHistory()).map((j) => j.id).sort()).toEqual(["bad", "done"]);
    const failed = await ctx.jobManager.getJobHistory({ status: JobStatus.FAILED });
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ id: "bad", errorMessage: "it broke" });
    const { rows } = await ctx.pool.query("SELECT count(*)::int AS n FROM jobs");
    expect(rows[0].n).toBe(0);
  });

  it("cancels a job, and retries it back to pending with the retry count reset", async () => {
    await ctx.jobManager.createJob({ id: "c", jobType: "agent", name: "x" });
    const cancelled = await ctx.jobManager.cancelJob("c");
    expect(cancelled).toMatchObject({ status: "cancelled", archived: true });
    expect(await ctx.jobManager.cancelJob("c")).toMatchObject({ status: "cancelled" });
    const retried = await ctx.jobManager.retryJob("c");
    expect(retried).toMatchObject({ status: "pending", retryCount: 0, archived: false, errorMessage: null });
    expect((await ctx.jobManager.getReadyJobs()).map((j) => j.id)).toEqual(["c"]);
    await expect(ctx.jobManager.retryJob("c")).rejects.toThrow(/only failed or cancelled jobs can be retried/);
    await expect(ctx.jobManager.cancelJob("nope")).rejects.toThrow(/not found/);
  });

  it("cleanupOldHistory deletes only old history and returns the count", async () => {
    const driver = new TestDriver(ctx.prisma);
    await ctx.jobManager.createJobs([
      { id: "old", jobType: "agent", name: "x" },
      { id: "new", jobType: "agent", name: "x" },
    ]);
    await driver.complete("old");
    await driver.complete("new");
    await ctx.pool.query("UPDATE job_history SET completed_at = now() - interval '40 days' WHERE job_id = 'old'");
    expect(await ctx.jobManager.cleanupOldHistory(30)).toBe(1);
    expect(await ctx.jobManager.getJob("old")).toBeNull();
    expect(await ctx.jobManager.getJob("new")).not.toBeNull();
    await expect(ctx.jobManager.cleanupOldHistory(-1)).rejects.toThrow(ValidationError);
  });
});
