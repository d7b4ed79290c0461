import pg from "pg";
import { DependencyCycleError, JobStatus, UnknownDependencyError } from "../src";
import { poolOf } from "../src/db/client";
import { truncateAll, useTestDatabase } from "./helpers/db";
import { TestDriver } from "./helpers/store";
import { waitFor } from "./helpers/wait";

const ctx = useTestDatabase();
let driver: TestDriver;
beforeAll(() => {
  driver = new TestDriver(ctx.prisma);
});
beforeEach(() => truncateAll(ctx.pool));

const job = (id: string, dependencies: string[] = []) => ({ id, jobType: "agent" as const, name: id, dependencies });
const readyIds = async () => (await ctx.jobManager.getReadyJobs({ limit: 1000 })).map((j) => j.id).sort();
const countRows = async (table: string) => (await ctx.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n as number;

describe("readiness", () => {
  it("a job is ready only when every dependency has completed", async () => {
    await ctx.jobManager.createJobs([job("a"), job("b"), job("c", ["a", "b"])]);
    expect(await readyIds()).toEqual(["a", "b"]);
    await driver.complete("a");
    expect(await readyIds()).toEqual(["b"]);
    expect((await ctx.jobManager.getJob("c"))?.pendingDependencies).toBe(1);
    await driver.complete("b");
    expect(await readyIds()).toEqual(["c"]);
  });

  it("a dependency already archived as completed counts as done", async () => {
    await ctx.jobManager.createJob(job("a"));
    await driver.complete("a");
    const child = await ctx.jobManager.createJob(job("child", ["a"]));
    expect(child.pendingDependencies).toBe(0);
    expect(await readyIds()).toEqual(["child"]);
  });

  it("mixes archived and live dependencies", async () => {
    await ctx.jobManager.createJobs([job("done"), job("live")]);
    await driver.complete("done");
    const child = await ctx.jobManager.createJob(job("child", ["done", "live"]));
    expect(child.pendingDependencies).toBe(1);
    await driver.complete("live");
    expect(await readyIds()).toEqual(["child"]);
  });

  it("repeated ids in a dependency list count once and are stored as given", async () => {
    await ctx.jobManager.createJob(job("a"));
    const child = await ctx.jobManager.createJob(job("child", ["a", "a"]));
    expect(child.dependencies).toEqual(["a", "a"]);
    await driver.complete("a");
    expect(await readyIds()).toEqual(["child"]);
  });

  it("deleting old history never changes whether a live job is ready", async () => {
    await ctx.jobManager.createJobs([job("a"), job("b"), job("c", ["a", "b"])]);
    await driver.complete("a");
    await ctx.pool.query("UPDATE job_history SET completed_at = now() - interval '400 days'");
    expect(await ctx.jobManager.cleanupOldHistory(1)).toBe(1);
    expect((await ctx.jobManager.getJob("c"))?.pendingDependencies).toBe(1);
    await driver.complete("b");
    expect(await readyIds()).toEqual(["c"]);
  });
});

describe("completion with hostile ids", () => {
  it("stores ids and results faithfully and unblocks the dependents of exactly what it archived", async () => {
    const nasty = `it's "quoted" \\ back; DROP TABLE jobs; -- ü 日本 🎉 $1 ${"$$"}`;
    await ctx.jobManager.createJobs([job(nasty), job("child", [nasty]), job("other")]);
    await driver.complete(nasty, { text: nasty, n: [1, null, "x'y"] });
    expect(await ctx.jobManager.getJob(nasty)).toMatchObject({ status: "completed", result: { text: nasty, n: [1, null, "x'y"] } });
    expect(await readyIds()).toEqual(["child", "other"]);
  });
});

describe("rejected graphs write nothing", () => {
  it("rejects an unknown dependency, naming the ids", async () => {
    const error = await ctx.jobManager.createJob(job("x", ["ghost-1", "ghost-2"])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnknownDependencyError);
    expect((error as UnknownDependencyError).ids.sort()).toEqual(["ghost-1", "ghost-2"]);
    expect(await countRows("jobs")).toBe(0);
  });

  it("rejects a job depending on itself", async () => {
    const error = await ctx.jobManager.createJob(job("self", ["self"])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DependencyCycleError);
    expect((error as DependencyCycleError).ids).toEqual(["self", "self"]);
    expect(await countRows("jobs")).toBe(0);
  });

  it("rejects a cycle inside createJobs, naming it", async () => {
    const error = await ctx.jobManager
      .createJobs([job("ok"), job("a", ["c", "ok"]), job("b", ["a"]), job("c", ["b"])])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DependencyCycleError);
    expect(new Set((error as DependencyCycleError).ids)).toEqual(new Set(["a", "b", "c"]));
    expect((error as Error).message).toMatch(/dependency cycle: "a" -> "c" -> "b" -> "a"/);
    expect(await countRows("jobs")).toBe(0);
    expect(await countRows("job_dependencies")).toBe(0);
  });
});

describe("failure cascades", () => {
  it("when a dependency fails, everything downstream is cancelled at once, naming the cause", async () => {
    // a -> b -> d, a -> c -> d, x independent, e depends on d and x
    await ctx.jobManager.createJobs([job("a"), job("x"), job("b", ["a"]), job("c", ["a"]), job("d", ["b", "c"]), job("e", ["d", "x"])]);
    await driver.failFinally("a");
    for (const id of ["b", "c", "d", "e"]) {
      const j = await ctx.jobManager.getJob(id);
      expect(j).toMatchObject({ status: JobStatus.CANCELLED, archived: true });
      expect(j?.errorMessage).toBe('cancelled because job "a" failed');
    }
    expect((await ctx.jobManager.getJob("x"))?.status).toBe("pending");
    expect(await readyIds()).toEqual(["x"]);
    // Edges outlive archiving (retryJob downstream walks them) until history is pruned.
    expect(await countRows("job_dependencies")).toBe(6);
  });

  it("cancelling a job cancels its dependents transitively", async () => {
    await ctx.jobManager.createJobs([job("root"), job("mid", ["root"]), job("leaf", ["mid"])]);
    await ctx.jobManager.cancelJob("root");
    expect((await ctx.jobManager.getJob("mid"))?.errorMessage).toBe('cancelled because job "root" cancelled');
    expect((await ctx.jobManager.getJob("leaf"))?.status).toBe("cancelled");
    expect(await countRows("jobs")).toBe(0);
  });

  it("a new job depending on an archived failed or cancelled job is created cancelled", async () => {
    await ctx.jobManager.createJobs([job("f"), job("k")]);
    await driver.failFinally("f");
    await ctx.jobManager.cancelJob("k");
    const [onFailed, onCancelled, downstream] = await ctx.jobManager.createJobs([job("n1", ["f"]), job("n2", ["k"]), job("n3", ["n1"])]);
    expect(onFailed).toMatchObject({ status: "cancelled", errorMessage: 'cancelled because job "f" failed', archived: true });
    expect(onCancelled).toMatchObject({ status: "cancelled", errorMessage: 'cancelled because job "k" cancelled' });
    expect(downstream).toMatchObject({ status: "cancelled", errorMessage: 'cancelled because job "n1" cancelled' });
    expect(await countRows("jobs")).toBe(0);
  });

  it("retrying a failed job is refused while a dependency can never complete", async () => {
    await ctx.jobManager.createJobs([job("p"), job("q", ["p"])]);
    await driver.failFinally("p");
    await expect(ctx.jobManager.retryJob("q")).rejects.toThrow(/"p" \(failed\).*retry them first/);
    await ctx.jobManager.retryJob("p");
    const q = await ctx.jobManager.retryJob("q");
    expect(q).toMatchObject({ status: "pending", pendingDependencies: 1 });
    await driver.complete("p");
    expect(await readyIds()).toEqual(["q"]);
  });
});

describe("ready notifications from createJob", () => {
  /**
   * Listens on "skein_jobs_ready". `ready()` counts the notifications with an empty
   * payload (what Skein sends); `marker(name)` sends one with its own payload
   * and waits for it: notifications arrive in commit order, so every one
   * committed before the marker has arrived by then.
   */
  async function listen() {
    const listener = new pg.Client({ connectionString: ctx.db.url });
    await listener.connect();
    await listener.query(`LISTEN ${"skein_jobs_ready"}`);
    let ready = 0;
    const seen = new Set<string>();
    listener.on("notification", (n) => {
      if (n.payload) seen.add(n.payload);
      else ready++;
    });
    const until = (done: () => boolean, what: string) => waitFor(async () => done(), `the notification ${what}`, 10_000);
    return {
      ready: () => ready,
      until,
      marker: async (name: string) => {
        await ctx.pool.query("SELECT pg_notify($1, $2)", ["skein_jobs_ready", name]);
        await until(() => seen.has(name), `marker ${name}`);
      },
      end: () => listener.end(),
    };
  }

  it("an idle manager's insert carries the notification itself: one statement per ready job, none for a job that runs later", async () => {
    const pool = poolOf(ctx.prisma) as pg.Pool;
    const listener = await listen();
    const spy = jest.spyOn(pool, "query");
    try {
      await ctx.jobManager.createJob({ ...job("later"), runAt: new Date(Date.now() + 3_600_000) });
      await ctx.jobManager.createJob(job("now"));
      // No NOTIFY statement after the inserts: the second insert sent it at its commit.
      expect(spy).toHaveBeenCalledTimes(2);
      spy.mockRestore();
      await listener.marker("after both");
      expect(listener.ready()).toBe(1);
    } finally {
      spy.mockRestore();
      await listener.end();
    }
  });

  /**
   * Starts `create` (which inserts job `id`) while an uncommitted row with the same id holds its
   * insert on the primary key, and resolves once that insert waits. `release()` rolls the row
   * back and returns what `create` returned; it is safe to call again.
   */
  async function heldInsert(id: string, create: () => Promise<unknown>) {
    const blocker = await ctx.pool.connect();
    await blocker.query("BEGIN");
    await blocker.query(`INSERT INTO jobs (id, job_type, name) VALUES ($1, 'agent', $1)`, [id]);
    const creating = create();
    creating.catch(() => undefined); // awaited by release()
    let released: Promise<unknown> | undefined;
    const release = () =>
      (released ??= blocker
        .query("ROLLBACK")
        .finally(() => blocker.release())
        .then(() => creating));
    try {
      const waiting = `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`;
      await waitFor(async () => (await ctx.pool.query(waiting)).rowCount === 1, `the insert of ${id} to wait on the lock`);
    } catch (error) {
      await release().catch(() => undefined);
      throw error;
    }
    return { release };
  }

  it("a creator that finds another insert carrying a notification is notified at once, not after it", async () => {
    const listener = await listen();
    const carrier = await heldInsert("carrier", () => ctx.jobManager.createJob(job("carrier")));
    try {
      // This insert cannot carry (one carrier at a time): it sends a NOTIFY after its commit,
      // while the carrier still waits.
      await ctx.jobManager.createJob(job("meanwhile"));
      await listener.until(() => listener.ready() === 1, "for the job created meanwhile");
      await carrier.release();
      // The carrier's own, sent at its commit.
      await listener.marker("after the carrier");
      expect(listener.ready()).toBe(2);
    } finally {
      await carrier.release().catch(() => undefined);
      await listener.end();
    }
  });

  it("a job that comes due while its insert runs is still announced", async () => {
    const listener = await listen();
    // Not due when the insert starts (by the server's clock), due by the time it commits. Both
    // clocks are real ones here (PostgreSQL's now()), so the test waits for the run time to pass.
    const runAt = new Date(Date.now() + 300);
    const soon = await heldInsert("soon", () => ctx.jobManager.createJob({ ...job("soon"), runAt }));
    try {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, runAt.getTime() - Date.now()) + 50));
      await soon.release();
      await listener.until(() => listener.ready() === 1, "for the job that came due");
    } finally {
      await soon.release().catch(() => undefined);
      await listener.end();
    }
  });
});

describe("completion unblocks dependents in its transaction", () => {
  it("sends a NOTIFY when a dependent becomes ready", async () => {
    await ctx.jobManager.createJobs([job("parent"), job("child", ["parent"])]);
    const listener = new pg.Client({ connectionString: ctx.db.url });
    await listener.connect();
    try {
      await listener.query(`LISTEN ${"skein_jobs_ready"}`);
      const notified = new Promise<string>((resolve) => listener.on("notification", (n) => resolve(n.channel)));
      const { ready } = await driver.complete("parent");
      expect(ready).toBe(1);
      expect(await notified).toBe("skein_jobs_ready");
    } finally {
      await listener.end();
    }
  });

  it("a child created while its parent completes is never left blocked", async () => {
    await ctx.jobManager.createJob(job("parent"));
    const [claimed] = await driver.claimAll();
    // Create the child inside an open transaction: it share-locks the parent.
    let commit!: () => void;
    const committed = new Promise<void>((resolve) => (commit = resolve));
    const creating = ctx.prisma.$transaction(async (tx) => {
      await ctx.jobManager.createJob(job("child", ["parent"]), { tx });
      await committed;
    });
    // Wait until the child's transaction holds the parent's lock, then complete the parent.
    for (let i = 0; i < 200; i++) {
      const { rows } = await ctx.pool.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'tuple' OR mode = 'RowShareLock'");
      if (rows[0].n > 0) break;
      await new Promise((r) => setImmediate(r));
    }
    const completing = driver.store.complete([{ ...claimed, result: null }]);
    commit();
    await creating;
    await completing;
    expect((await ctx.jobManager.getJob("child"))?.pendingDependencies).toBe(0);
    expect(await readyIds()).toEqual(["child"]);
  });

  it("a job enqueued in the caller's transaction vanishes when it rolls back", async () => {
    await expect(
      ctx.prisma.$transaction(async (tx) => {
        await ctx.jobManager.createJob(job("ghost"), { tx });
        throw new Error("application failure");
      }),
    ).rejects.toThrow("application failure");
    expect(await ctx.jobManager.getJob("ghost")).toBeNull();
    await ctx.prisma.$transaction(async (tx) => {
      await ctx.jobManager.createJob(job("real"), { tx });
    });
    expect(await ctx.jobManager.getJob("real")).not.toBeNull();
  });
});

describe("large graphs", () => {
  it("a job with 10,000 dependencies becomes ready when the last completes", async () => {
    const parents = Array.from({ length: 10_000 }, (_, i) => job(`p${i}`));
    await ctx.jobManager.createJobs([...parents, job("fan-in", parents.map((p) => p.id))]);
    expect((await ctx.jobManager.getJob("fan-in"))?.pendingDependencies).toBe(10_000);
    const claimed = await driver.claimAll();
    expect(claimed).toHaveLength(10_000);
    const last = claimed.pop() as { id: string; leaseToken: string };
    await driver.store.complete(claimed.map((c) => ({ ...c, result: null })));
    expect((await ctx.jobManager.getJob("fan-in"))?.pendingDependencies).toBe(1);
    const { ready } = await driver.store.complete([{ ...last, result: null }]);
    expect(ready).toBe(1);
    expect(await readyIds()).toEqual(["fan-in"]);
  });

  it("a job that 10,000 others depend on unblocks them all in one completion", async () => {
    const children = Array.from({ length: 10_000 }, (_, i) => job(`c${i}`, ["root"]));
    await ctx.jobManager.createJobs([job("root"), ...children]);
    const { ready } = await driver.complete("root");
    expect(ready).toBe(10_000);
    expect((await ctx.jobManager.getReadyJobs({ limit: 20_000 })).length).toBe(10_000);
  });

  it("a failure cancels 10,000 dependents", async () => {
    const children = Array.from({ length: 10_000 }, (_, i) => job(`c${i}`, ["root"]));
    await ctx.jobManager.createJobs([job("root"), ...children]);
    await driver.failFinally("root");
    expect(await countRows("jobs")).toBe(0);
    const { rows } = await ctx.pool.query("SELECT count(*)::int AS n FROM job_history WHERE status = 'cancelled'");
    expect(rows[0].n).toBe(10_000);
  });
});
