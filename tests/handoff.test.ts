import pg from "pg";
import type { HandoffRequest } from "../src/db/sql/handoff";
import { leaseTokens } from "../src/db/sql/rows";
import type { CreateJobInput } from "../src";
import { truncateAll, useTestDatabase } from "./helpers/db";
import { TestDriver } from "./helpers/store";
import { waitFor } from "./helpers/wait";

const ctx = useTestDatabase();
let driver: TestDriver;
beforeAll(() => {
  driver = new TestDriver(ctx.prisma);
});
beforeEach(() => truncateAll(ctx.pool));

const job = (id: string, dependencies: string[] = [], more: Partial<CreateJobInput> = {}): CreateJobInput => ({ id, jobType: "agent", name: id, dependencies, ...more });
const offer = (limit: number, filter: HandoffRequest["filter"] = { queues: null, tags: [] }): HandoffRequest => ({ workerId: "w1", tokens: leaseTokens(limit), leaseSeconds: 60, filter });
const statuses = async () =>
  Object.fromEntries(
    (await ctx.pool.query<{ id: string; status: string; locked_by: string | null; pending_dependencies: number }>("SELECT id, status, locked_by, pending_dependencies FROM jobs ORDER BY id")).rows.map(
      (r) => [r.id, `${r.status}${r.locked_by ? `@${r.locked_by}` : ""}/${r.pending_dependencies}`],
    ),
  );

/** Leases the ready job `id` to worker w0 (no other job is touched) and completes it, offering its dependents to worker w1. */
async function completeOffering(id: string, handoff: HandoffRequest) {
  const { rows } = await ctx.pool.query<{ lease_token: string }>(
    `UPDATE jobs SET status = 'running', locked_by = 'w0', lease_token = gen_random_uuid(), lease_expires_at = now() + interval '60 seconds',
       started_at = now(), attempts = attempts + 1
     WHERE id = $1 AND status = 'pending' AND pending_dependencies = 0 RETURNING lease_token::text`,
    [id],
  );
  if (rows.length === 0) throw new Error(`${id} was not ready`);
  return driver.store.complete([{ id, leaseToken: rows[0].lease_token, result: { from: id } }], handoff);
}

describe("a completion hands ready dependents to its worker", () => {
  it("leases up to the limit, highest priority first, in the completion's own update; the rest become ready for any worker", async () => {
    await ctx.jobManager.createJobs([
      job("root"),
      job("low", ["root"], { priority: 1 }),
      job("high", ["root"], { priority: 5 }),
      job("mid", ["root"], { priority: 3 }),
      job("other"),
      job("both", ["root", "other"]),
    ]);
    const { accepted, ready, handed } = await completeOffering("root", offer(2));
    expect(accepted).toEqual(["root"]);
    expect(handed.map((r) => r.id)).toEqual(["high", "mid"]);
    expect(ready).toBe(1); // "low", for any worker
    for (const row of handed) {
      expect(row).toMatchObject({ status: "running", locked_by: "w1", attempts: 1, pending_dependencies: 0 });
      expect(row.started_at).toBeInstanceOf(Date);
      expect(row.lease_expires_at?.getTime()).toBeGreaterThan(Date.now() + 50_000);
    }
    expect(new Set(handed.map((r) => r.lease_token)).size).toBe(2);
    expect(await statuses()).toEqual({ both: "pending/1", high: "running@w1/0", low: "pending/0", mid: "running@w1/0", other: "pending/0" });
    // A handed-over job completes under its lease like a claimed one.
    const [high] = handed;
    expect((await driver.store.complete([{ id: high.id, leaseToken: high.lease_token as string, result: null }])).accepted).toEqual(["high"]);
  });

  it("hands over only what the plain claim would give that worker", async () => {
    await ctx.jobManager.createJobs([
      job("root"),
      job("tenant", ["root"], { tenant: "acme" }),
      job("rate", ["root"], { rateLimitKey: "openai" }),
      job("capped", ["root"], { concurrencyKey: "db" }),
      job("later", ["root"], { runAt: new Date(Date.now() + 3_600_000) }),
      job("gpu", ["root"], { tags: ["gpu"] }),
      job("mail", ["root"], { queue: "mail" }),
      job("plain", ["root"]),
    ]);
    await ctx.jobManager.createJobs([job("child", ["root"])], { parent: { id: "plain", tenant: null, taskId: null } });
    const { handed, ready } = await completeOffering("root", offer(20, { queues: ["default"], tags: [] }));
    // A delegated child is a plain job too: its parent never runs it, it parks until the child ends.
    expect(handed.map((r) => r.id).sort()).toEqual(["child", "plain"]);
    expect(ready).toBe(5); // all but "later" (not due) and the two handed over
    // A worker with the tag and the queue takes those too.
    await truncateAll(ctx.pool);
    await ctx.jobManager.createJobs([job("root"), job("gpu", ["root"], { tags: ["gpu"] }), job("mail", ["root"], { queue: "mail" })]);
    expect((await completeOffering("root", offer(20, { queues: ["default", "mail"], tags: ["gpu"] }))).handed.map((r) => r.id).sort()).toEqual(["gpu", "mail"]);
  });

  it("hands over nothing while a ready job the worker could claim comes first (higher priority, an earlier run time, or the same and a smaller id)", async () => {
    const past = new Date(Date.now() - 60_000);
    await ctx.jobManager.createJobs([job("root"), job("dep", ["root"], { priority: 2 }), job("urgent", [], { priority: 3 })]);
    let out = await completeOffering("root", offer(5));
    expect(out.handed).toEqual([]);
    expect(out.ready).toBe(1);
    await truncateAll(ctx.pool);
    await ctx.jobManager.createJobs([job("root"), job("dep", ["root"]), job("older", [], { runAt: past })]);
    expect((await completeOffering("root", offer(5))).handed).toEqual([]);
    // Behind it in that order (lower priority, or the same priority and a later run time), it does not hold the dependent back.
    await truncateAll(ctx.pool);
    await ctx.jobManager.createJobs([job("root"), job("dep", ["root"], { runAt: past }), job("idle", [], { priority: -1 })]);
    out = await completeOffering("root", offer(5));
    expect(out.handed.map((r) => r.id)).toEqual(["dep"]);
    expect(out.ready).toBe(0);
    // Same priority and run time (one call): the id decides, as in the claim.
    await truncateAll(ctx.pool);
    await ctx.jobManager.createJobs([job("root"), job("b-dep", ["root"]), job("a-ready"), job("c-ready")]);
    await ctx.pool.query("UPDATE jobs SET run_at = $1", [past]);
    expect((await completeOffering("root", offer(5))).handed).toEqual([]);
    await truncateAll(ctx.pool);
    await ctx.jobManager.createJobs([job("root"), job("b-dep", ["root"]), job("c-ready")]);
    await ctx.pool.query("UPDATE jobs SET run_at = $1", [past]);
    expect((await completeOffering("root", offer(5))).handed.map((r) => r.id)).toEqual(["b-dep"]);
  });

  it("finds and hands back, announced, what a handoff leased when its reply was lost", async () => {
    await ctx.jobManager.createJobs([job("root"), job("d1", ["root"]), job("d2", ["root"]), job("other")]);
    const request = offer(2);
    const { handed } = await completeOffering("root", request);
    expect(handed).toHaveLength(2);
    const listener = new pg.Client({ connectionString: ctx.db.url });
    await listener.connect();
    try {
      await listener.query(`LISTEN ${"skein_jobs_ready"}`);
      const notified = new Promise<void>((resolve) => listener.on("notification", () => resolve()));
      // Another worker's tokens, or tokens of a write that leased nothing, find nothing.
      expect(await driver.store.releaseLeasedWith("w2", request.tokens, "test")).toEqual([]);
      expect(await driver.store.releaseLeasedWith("w1", leaseTokens(3), "test")).toEqual([]);
      expect((await driver.store.releaseLeasedWith("w1", request.tokens, "test")).sort()).toEqual(["d1", "d2"]);
      await notified;
    } finally {
      await listener.end();
    }
    const { rows } = await ctx.pool.query("SELECT id, status, attempts, locked_by, started_at FROM jobs WHERE id IN ('d1', 'd2') ORDER BY id");
    expect(rows).toEqual([
      { id: "d1", status: "pending", attempts: 0, locked_by: null, started_at: null },
      { id: "d2", status: "pending", attempts: 0, locked_by: null, started_at: null },
    ]);
  });

  it("notifies workers only of the dependents it did not hand over", async () => {
    const listener = new pg.Client({ connectionString: ctx.db.url });
    await listener.connect();
    try {
      await listener.query(`LISTEN ${"skein_jobs_ready"}`);
      let ready = 0;
      const seen = new Set<string>();
      listener.on("notification", (n) => (n.payload ? seen.add(n.payload) : ready++));
      const marker = async (name: string) => {
        await ctx.pool.query("SELECT pg_notify($1, $2)", ["skein_jobs_ready", name]);
        await waitFor(async () => seen.has(name), `marker ${name}`);
      };
      await ctx.jobManager.createJobs([job("a"), job("a1", ["a"]), job("b"), job("b1", ["b"]), job("b2", ["b"])]);
      await marker("created");
      ready = 0;
      await completeOffering("a", offer(5)); // its one dependent handed over: nothing to announce
      await marker("after a");
      expect(ready).toBe(0);
      await completeOffering("b", offer(1)); // one of two handed over: the other is announced
      await marker("after b");
      expect(ready).toBe(1);
    } finally {
      await listener.end();
    }
  });
});
