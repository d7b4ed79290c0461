import { createPrismaClient, JobManager, JobStatus, JobType, NonRetryableError, refreshPlannerStatistics, runHistoryPruning, Worker, type Job, type JobContext, type WorkerOptions } from "../src";
import { truncateAll, useTestDatabase } from "./helpers/db";
import { deferred, waitFor } from "./helpers/wait";
import { TestDriver } from "./helpers/store";
import { CompletionBatcher } from "../src/worker/completer";
import { systemClock } from "../src/core/clock";
import { silentLogger } from "../src/core/logger";
import { StatisticsWatch } from "../src/db/statistics";
import { databaseFor } from "../src/db/database";
import { JobStore } from "../src/db/store";
import { claimJobs } from "../src/db/sql/claim";

const ctx = useTestDatabase();
const workers: Worker[] = [];
beforeEach(() => truncateAll(ctx.pool));
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop({ force: true })));
});

function startWorker(options: Partial<WorkerOptions> = {}): Promise<Worker> {
  const worker = new Worker({ prisma: ctx.prisma, pollInterval: 0.2, retryBackoff: { baseSeconds: 0.05, maxSeconds: 0.2 }, ...options });
  workers.push(worker);
  return worker.start().then(() => worker);
}

const finished = (id: string) =>
  waitFor(async () => {
    const job = await ctx.jobManager.getJob(id);
    return job && job.archived ? job : undefined;
  }, `job ${id} to finish`);

describe("Worker: executors", () => {
  it("runs agent and query jobs, stores results, and passes dependency results", async () => {
    const seen: Record<string, unknown> = {};
    await startWorker({
      agentRegistry: {
        loader: async (params) => ({ rows: 3, params }),
      },
      queryEngine: async ({ query, inferredGoalOutput }, c: JobContext) => {
        seen.deps = c.dependencyResults;
        seen.workerId = c.workerId;
        return { answer: `${String(query)} -> ${String(inferredGoalOutput)}` };
      },
    });
    const a = await ctx.jobManager.createJob({ jobType: JobType.AGENT, name: "load", payload: { agent_name: "loader", parameters: { file: "data.csv" } } });
    const b = await ctx.jobManager.createJob({
      jobType: JobType.QUERY,
      name: "analyze",
      payload: { query: "count rows", inferred_goal_output: "report" },
      dependencies: [a.id],
    });
    expect(await finished(b.id)).toMatchObject({ status: "completed", result: { answer: "count rows -> report" } });
    expect(await ctx.jobManager.getJob(a.id)).toMatchObject({ status: "completed", result: { rows: 3, params: { file: "data.csv" } } });
    expect(seen.deps).toEqual({ [a.id]: { rows: 3, params: { file: "data.csv" } } });
    expect(typeof seen.workerId).toBe("string");
  });

  it("tries custom executors first, in order", async () => {
    const worker = await startWorker({ agentRegistry: { x: async () => "built-in" } });
    worker.addExecutor({ canExecute: (job: Job) => job.payload.agent_name === "x", execute: async () => ({ ok: true }) });
    worker.addExecutor({ canExecute: () => true, execute: async () => "second" });
    const job = await ctx.jobManager.createJob({ jobType: "agent", name: "x", payload: { agent_name: "x" } });
    expect((await finished(job.id)).result).toEqual({ ok: true });
  });

  it.each([
    ["an unregistered agent", { jobType: "agent" as const, name: "x", payload: { agent_name: "ghost" } }, 'agent "ghost" is not registered'],
    ["a query job without a query engine", { jobType: "query" as const, name: "q", payload: { query: "?" } }, "no query engine configured"],
  ])("fails %s at once, without retries", async (_what, input, message) => {
    await startWorker();
    const job = await ctx.jobManager.createJob({ ...input, maxRetries: 5 });
    expect(await finished(job.id)).toMatchObject({ status: "failed", errorMessage: message, retryCount: 0, attempts: 1 });
  });

  it("fails a job no executor accepts with a clear message", async () => {
    await startWorker();
    await ctx.pool.query("INSERT INTO jobs (id, job_type, name) VALUES ('odd', 'shell', 'odd')");
    expect(await finished("odd")).toMatchObject({ status: "failed", errorMessage: 'no executor for job type "shell" (job "odd")' });
  });

  it("fails at once when an executor throws NonRetryableError", async () => {
    await startWorker({ agentRegistry: { strict: async () => Promise.reject(new NonRetryableError("bad input: no file given")) } });
    const job = await ctx.jobManager.createJob({ jobType: "agent", name: "x", payload: { agent_name: "strict" }, maxRetries: 5 });
    expect(await finished(job.id)).toMatchObject({ status: "failed", errorMessage: "bad input: no file given", retryCount: 0 });
  });

  it("fails a job whose executor returns something JSON cannot hold, without retries", async () => {
    await startWorker({ agentRegistry: { bad: async () => ({ n: BigInt(1) }) as never } });
    const job = await ctx.jobManager.createJob({ jobType: "agent", name: "x", payload: { agent_name: "bad" } });
    expect(await finished(job.id)).toMatchObject({ status: "failed", retryCount: 0 });
  });
});

describe("Worker: failures, retries, timeouts", () => {
  it("retries a failing attempt, then succeeds, counting retries and attempts", async () => {
    let calls = 0;
    await startWorker({
      agentRegistry: {
        flaky: async () => {
          calls++;
          if (calls < 3) throw new Error(`flaked ${calls}`);
          return { calls };
        },
      },
    });
    const job = await ctx.jobManager.createJob({ jobType: "agent", name: "flaky", payload: { agent_name: "flaky" }, maxRetries: 3 });
    const done = await finished(job.id);
    expect(done).toMatchObject({ status: "completed", result: { calls: 3 }, retryCount: 2, attempts: 3 });
  });

  it("fails finally after maxRetries and cancels the dependents", async () => {
    await startWorker({ agentRegistry: { boom: async () => Promise.reject(new Error("always broken")) } });
    const parent = await ctx.jobManager.createJob({ jobType: "agent", name: "p", payload: { agent_name: "boom" }, maxRetries: 2 });
    const child = await ctx.jobManager.createJob({ jobType: "agent", name: "c", payload: { agent_name: "boom" }, dependencies: [parent.id] });
    expect(await finished(parent.id)).toMatchObject({ status: "failed", errorMessage: "always broken", retryCount: 2, attempts: 3 });
    expect(await ctx.jobManager.getJob(child.id)).toMatchObject({ status: "cancelled", errorMessage: `cancelled because job "${parent.id}" failed` });
  });

  it("waits the backoff before retrying", async () => {
    const starts: number[] = [];
    await startWorker({
      retryBackoff: { baseSeconds: 0.4, maxSeconds: 10 },
      agentRegistry: {
        once: async () => {
          starts.push(Date.now());
          if (starts.length === 1) throw new Error("first try fails");
          return null;
        },
      },
    });
    const job = await ctx.jobManager.createJob({ jobType: "agent", name: "x", payload: { agent_name: "once" } });
    await finished(job.id);
    expect(starts[1] - starts[0]).toBeGreaterThanOrEqual(0.4 * 0.8 * 1000 - 5);
  });

  it("aborts an attempt that exceeds timeoutSeconds and counts it as a failure", async () => {
    let sawAbort = false;
    await startWorker({
      agentRegistry: {
        slow: (_p, c) =>
          new Promise((resolve) => {
            c.signal.addEventListener("abort", () => {
              sawAbort = true;
              resolve(null);
            });
          }),
      },
    });
    const job = await ctx.jobManager.createJob({ jobType: "agent", name: "slow", payload: { agent_name: "slow" }, timeoutSeconds: 1, maxRetries: 0 });
    expect(await finished(job.id)).toMatchObject({ status: "failed", errorMessage: "timed out after 1 s" });
    expect(sawAbort).toBe(true);
  });

  it("an executor that first looks at ctx.signal after its attempt timed out finds it aborted, with the reason", async () => {
    const release = deferred();
    let seen: { aborted: boolean; reason: string } | undefined;
    await startWorker({
      agentRegistry: {
        late: async (_p, c) => {
          await release.promise;
          seen = { aborted: c.signal.aborted, reason: String(c.signal.reason) };
          return null;
        },
      },
    });
    const job = await ctx.jobManager.createJob({ jobType: "agent", name: "late", payload: { agent_name: "late" }, timeoutSeconds: 1, maxRetries: 0 });
    expect(await finished(job.id)).toMatchObject({ status: "failed", errorMessage: "timed out after 1 s" });
    release.resolve();
    await waitFor(async () => seen !== undefined, "the executor to look at its signal");
    expect(seen).toEqual({ aborted: true, reason: "JobTimeoutError: timed out after 1 s" });
  });
});

describe("Worker: leases and shutdown", () => {
  it("a job cancelled while it runs loses its lease: the late result is refused and the attempt aborted", async () => {
    const started = deferred();
    const release = deferred();
    let aborted = false;
    await startWorker({
      heartbeatInterval: 0.1,
      staleTimeout: 5,
      agentRegistry: {
        long: async (_p, c) => {
          c.signal.addEventListener("abort", () => (aborted = true));
          started.resolve();
          await release.promise;
          return { late: true };
        },
      },
    });
    const job = await ctx.jobManager.createJob({ jobType: "agent", name: "long", payload: { agent_name: "long" } });
    await started.promise;
    await ctx.jobManager.cancelJob(job.id);
    await waitFor(async () => aborted, "the attempt to be aborted");
    release.resolve();
    await new Promise((r) => setTimeout(r, 100));
    expect(await ctx.jobManager.getJob(job.id)).toMatchObject({ status: "cancelled", result: null });
  });

  it("stop() lets a running job finish within the grace period", async () => {
    const started = deferred();
    const worker = await startWorker({
      shutdownTimeout: 10,
      agentRegistry: {
        job: async () => {
          started.resolve();
          await new Promise((r) => setTimeout(r, 300));
          return "finished";
        },
      },
    });
    const job = await ctx.jobManager.createJob({ jobType: "agent", name: "x", payload: { agent_name: "job" } });
    await started.promise;
    await worker.stop();
    expect(await ctx.jobManager.getJob(job.id)).toMatchObject({ status: "completed", result: "finished" });
    const { rows } = await ctx.pool.query("SELECT count(*)::int AS n FROM workers");
    expect(rows[0].n).toBe(0);
  });

  it("stop() returns a job that outlives the grace period to pending without using a retry", async () => {
    const started = deferred();
    let signalled = false;
    const worker = await startWorker({
      shutdownTimeout: 0.2,
      agentRegistry: {
        hang: (_p, c) => {
          started.resolve();
          return new Promise((resolve) => c.signal.addEventListener("abort", () => ((signalled = true), resolve(null))));
        },
      },
    });
    const job = await ctx.jobManager.createJob({ jobType: "agent", name: "x", payload: { agent_name: "hang" } });
    await started.promise;
    await worker.stop();
    expect(signalled).toBe(true);
    expect(await ctx.jobManager.getJob(job.id)).toMatchObject({ status: JobStatus.PENDING, retryCount: 0, lockedBy: null });
  });

  it("registers itself in the workers table while running", async () => {
    const worker = await startWorker({ maxConcurrentJobs: 3 });
    const { rows } = await ctx.pool.query("SELECT * FROM workers WHERE id = $1", [worker.workerId]);
    expect(rows[0]).toMatchObject({ pid: process.pid, concurrency: 3, status: "running", executors: ["agent", "query"] });
  });

  it("rescues a job whose lease expired (its worker died) on another worker's heartbeat", async () => {
    const job = await ctx.jobManager.createJob({ jobType: "agent", name: "x", payload: { agent_name: "ok" } });
    // A dead worker's claim: running, with a lease that already expired.
    await ctx.pool.query(
      "UPDATE jobs SET status = 'running', locked_by = 'dead-worker', lease_token = gen_random_uuid(), lease_expires_at = now() - interval '1 second', attempts = 1 WHERE id = $1",
      [job.id],
    );
    await startWorker({ heartbeatInterval: 0.1, staleTimeout: 5, agentRegistry: { ok: async () => "rescued" } });
    expect(await finished(job.id)).toMatchObject({ status: "completed", result: "rescued", retryCount: 1, attempts: 2 });
  });
});

describe("Worker: slots and completions", () => {
  it("frees a slot when the executor returns, and stops claiming while completions back up", async () => {
    // Completions archive into job_history: holding a lock on it keeps them from being written.
    const lock = await ctx.pool.connect();
    try {
      await lock.query("BEGIN");
      await lock.query("LOCK TABLE job_history IN SHARE ROW EXCLUSIVE MODE");
      const started: string[] = [];
      const worker = await startWorker({ maxConcurrentJobs: 1, prefetch: 0 });
      worker.addExecutor({ canExecute: () => true, execute: async (job: Job) => void started.push(job.id) });
      const jobs = await ctx.jobManager.createJobs(Array.from({ length: 5 }, (_, i) => ({ jobType: "agent" as const, name: `j${i}`, payload: { agent_name: "x" } })));
      // One slot, yet a second job starts while the first one's completion is stuck...
      await waitFor(async () => started.length >= 2, "a second job to start while the first one's completion waits");
      // ...and then no more: one slot's worth of completions may wait, not more. (Time for wrong claims to show.)
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(started).toHaveLength(2);
      const { rows } = await ctx.pool.query<{ status: string; n: number }>("SELECT status, count(*)::int AS n FROM jobs GROUP BY status ORDER BY status");
      expect(rows).toEqual([{ status: "pending", n: 3 }, { status: "running", n: 2 }]);
      await lock.query("COMMIT");
      for (const job of jobs) expect(await finished(job.id)).toMatchObject({ status: "completed" });
      expect(started).toHaveLength(5);
    } finally {
      await lock.query("ROLLBACK").catch(() => undefined);
      lock.release();
    }
  });
});

describe("JobStore: lease tokens", () => {
  it("gives every claimed job its own lease token (plain and flow-control claims), and a completion under another job's token is refused", async () => {
    const driver = new TestDriver(ctx.prisma);
    await ctx.jobManager.createJobs([
      ...Array.from({ length: 5 }, (_, i) => ({ id: `p${i}`, jobType: JobType.AGENT, name: "plain" })),
      ...Array.from({ length: 3 }, (_, i) => ({ id: `t${i}`, jobType: JobType.AGENT, name: "tenant", tenant: "acme" })),
    ]);
    const leases = await driver.claimAll();
    expect(leases.map((l) => l.id).sort()).toEqual(["p0", "p1", "p2", "p3", "p4", "t0", "t1", "t2"]);
    const tokens = leases.map((l) => l.leaseToken);
    expect(tokens.every((t) => typeof t === "string" && /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(t))).toBe(true);
    expect(new Set(tokens).size).toBe(8);
    const { rows } = await ctx.pool.query<{ id: string; lease_token: string }>("SELECT id, lease_token::text FROM jobs ORDER BY id");
    expect(new Map(rows.map((r) => [r.id, r.lease_token]))).toEqual(new Map(leases.map((l) => [l.id, l.leaseToken] as const)));
    const [a, b] = leases;
    expect((await driver.store.complete([{ id: a.id, leaseToken: b.leaseToken, result: null }])).accepted).toEqual([]);
    expect((await driver.store.complete([{ id: a.id, leaseToken: a.leaseToken, result: null }])).accepted).toEqual([a.id]);
  });
});

describe("CompletionBatcher", () => {
  it("writes a completion added just as the previous write ends (after the flush's last look at its queue)", async () => {
    const driver = new TestDriver(ctx.prisma);
    await ctx.jobManager.createJobs([
      { id: "b1", jobType: "agent", name: "b" },
      { id: "b2", jobType: "agent", name: "b" },
    ]);
    const leases = await driver.claimAll();
    const lease = (id: string) => leases.find((l) => l.id === id)?.leaseToken as string;
    const batcher = new CompletionBatcher(driver.store, { clock: systemClock, logger: silentLogger(), giveUpMs: 5_000, random: Math.random, onReady: () => undefined });
    // The continuation after the first write's promise runs before the batcher has let go of that flush.
    expect(await batcher.add({ id: "b1", leaseToken: lease("b1"), result: 1 })).toBe(true);
    const second = batcher.add({ id: "b2", leaseToken: lease("b2"), result: 2 });
    const timedOut = new Promise((resolve) => setTimeout(() => resolve("stuck"), 3_000).unref());
    expect(await Promise.race([second, timedOut])).toBe(true);
    await batcher.drain();
    expect(batcher.pending).toBe(0);
    expect((await ctx.jobManager.getJob("b2"))?.result).toBe(2);
  });
});

describe("Worker: prefetch", () => {
  /** A one-slot worker holding 3 jobs ahead; its executor records each start and keeps `first` running until `gate` settles. */
  const startGated = (first: string, gate: Promise<void>, started: string[]) =>
    startWorker({
      maxConcurrentJobs: 1,
      prefetch: 3,
      agentRegistry: {
        x: async (_p: unknown, c: JobContext) => {
          started.push(c.job.name);
          if (c.job.name === first) await gate;
          return null;
        },
      },
    });

  it("holds claimed jobs beyond the free slots, starts them in order as slots free, and hands back those not started on stop", async () => {
    const gate = deferred();
    const started: string[] = [];
    // Higher priorities first in the claim order, so the order of starts is checkable.
    for (let i = 0; i < 6; i++) await ctx.jobManager.createJob({ jobType: "agent", name: `j${i}`, payload: { agent_name: "x" }, priority: 10 - i });
    const worker = await startGated("j0", gate.promise, started);
    // One job runs, three more are held (running under the worker's lease), two stay pending.
    const counts = async () => JSON.stringify((await ctx.pool.query<{ status: string; n: number }>("SELECT status, count(*)::int AS n FROM jobs GROUP BY status ORDER BY status")).rows);
    await waitFor(async () => started.length === 1 && (await counts()) === JSON.stringify([{ status: "pending", n: 2 }, { status: "running", n: 4 }]), "one job running and three held");
    expect(started).toEqual(["j0"]);
    const { rows: held } = await ctx.pool.query<{ name: string }>("SELECT name FROM jobs WHERE status = 'running' AND name <> 'j0' ORDER BY name");
    expect(held.map((r) => r.name)).toEqual(["j1", "j2", "j3"]);
    const stopping = worker.stop();
    // The held jobs go back at once, without counting an attempt, while j0 still runs.
    await waitFor(async () => (await counts()) === JSON.stringify([{ status: "pending", n: 5 }, { status: "running", n: 1 }]), "held jobs handed back");
    const { rows } = await ctx.pool.query<{ attempts: number; started_at: Date | null; locked_by: string | null }>("SELECT attempts, started_at, locked_by FROM jobs WHERE status = 'pending'");
    expect(rows.every((r) => r.attempts === 0 && r.started_at === null && r.locked_by === null)).toBe(true);
    gate.resolve();
    await stopping;
    expect(started).toEqual(["j0"]);
    expect((await ctx.pool.query("SELECT 1 FROM job_history WHERE name = 'j0' AND status = 'completed'")).rowCount).toBe(1);
  });

  it("starts held jobs in claim order as slots free", async () => {
    const started: string[] = [];
    for (let i = 0; i < 8; i++) await ctx.jobManager.createJob({ jobType: "agent", name: `j${i}`, payload: { agent_name: "x" }, priority: 10 - i });
    await startWorker({ maxConcurrentJobs: 1, prefetch: 4, agentRegistry: { x: async (_p: unknown, c: JobContext) => void started.push(c.job.name) } });
    await waitFor(async () => started.length === 8, "all eight to start");
    expect(started).toEqual(["j0", "j1", "j2", "j3", "j4", "j5", "j6", "j7"]);
  });

  it("runs every job once, with several slots and jobs held", async () => {
    const started: string[] = [];
    const worker = await startWorker({ maxConcurrentJobs: 2, prefetch: 5 });
    worker.addExecutor({ canExecute: () => true, execute: async (job: Job) => void started.push(job.name) });
    const jobs = await ctx.jobManager.createJobs(Array.from({ length: 40 }, (_, i) => ({ jobType: "agent" as const, name: `j${i}`, payload: { agent_name: "x" } })));
    for (const job of jobs) expect(await finished(job.id)).toMatchObject({ status: "completed", attempts: 1 });
    expect(new Set(started).size).toBe(40);
    expect(started).toHaveLength(40);
  });

  it("drops a held job that is cancelled before it starts", async () => {
    const gate = deferred();
    const started: string[] = [];
    for (let i = 0; i < 4; i++) await ctx.jobManager.createJob({ id: `c${i}`, jobType: "agent", name: `c${i}`, payload: { agent_name: "x" }, priority: 10 - i });
    await startGated("c0", gate.promise, started);
    await waitFor(async () => started.length === 1 && (await ctx.pool.query("SELECT 1 FROM jobs WHERE status = 'running'")).rowCount === 4, "c0 running, c1-c3 held");
    await ctx.jobManager.cancelJob("c1");
    // The cancellation reaches the worker (NOTIFY) before c0 ends.
    await new Promise((resolve) => setTimeout(resolve, 200));
    gate.resolve();
    for (const id of ["c0", "c2", "c3"]) expect(await finished(id)).toMatchObject({ status: "completed" });
    expect(await finished("c1")).toMatchObject({ status: "cancelled" });
    expect(started).toEqual(["c0", "c2", "c3"]);
  });

  it("records a held job's start and duration from when its executor started, not from the claim", async () => {
    const worker = await startWorker({
      maxConcurrentJobs: 1,
      prefetch: 1,
      agentRegistry: { x: async (_p: unknown, c: JobContext) => (c.job.name === "slow" ? new Promise((r) => setTimeout(() => r(null), 400)) : null) },
    });
    await ctx.jobManager.createJobs([
      { id: "slow", jobType: "agent", name: "slow", payload: { agent_name: "x" }, priority: 2 },
      { id: "quick", jobType: "agent", name: "quick", payload: { agent_name: "x" }, priority: 1 },
    ]);
    const slow = await finished("slow");
    const quick = await finished("quick");
    expect(worker.workerId).toBeTruthy();
    expect(slow.durationSeconds).toBeGreaterThanOrEqual(0.35);
    // "quick" was claimed with "slow" (held for the one slot) but ran only after it.
    expect(quick.durationSeconds).toBeLessThan(0.25);
    expect((quick.startedAt as Date).getTime()).toBeGreaterThanOrEqual((slow.startedAt as Date).getTime() + 300);
  });

  it("gives a held job's executor, and its final failure, the start of the executor, not of the claim", async () => {
    const seen: Record<string, number> = {};
    await startWorker({
      maxConcurrentJobs: 1,
      prefetch: 1,
      agentRegistry: {
        x: async (_p: unknown, c: JobContext) => {
          seen[c.job.name] = (c.job.startedAt as Date).getTime();
          if (c.job.name === "slow") return new Promise((r) => setTimeout(() => r(null), 400));
          throw new NonRetryableError("boom");
        },
      },
    });
    await ctx.jobManager.createJobs([
      { id: "slow", jobType: "agent", name: "slow", payload: { agent_name: "x" }, priority: 2 },
      { id: "broken", jobType: "agent", name: "broken", payload: { agent_name: "x" }, priority: 1 },
    ]);
    const slow = await finished("slow");
    const broken = await finished("broken");
    expect(broken.status).toBe(JobStatus.FAILED);
    // "broken" was claimed with "slow" (held for the one slot) but ran only after it.
    expect(seen.broken).toBeGreaterThanOrEqual(seen.slow + 300);
    expect((broken.startedAt as Date).getTime()).toBeGreaterThanOrEqual((slow.startedAt as Date).getTime() + 300);
    expect(broken.durationSeconds).toBeLessThan(0.25);
  });

  it("refuses a prefetch that is not a whole number >= 0", () => {
    expect(() => new Worker({ prisma: ctx.prisma, prefetch: -1 })).toThrow(/prefetch/);
    expect(() => new Worker({ prisma: ctx.prisma, prefetch: 1.5 })).toThrow(/prefetch/);
  });
});

describe("Worker: dependents handed over by completions", () => {
  it("claims only the head of a chain: each later job is leased to it by its dependency's completion, and sees that dependency's result", async () => {
    const claimed: string[] = [];
    const claim = jest.spyOn(JobStore.prototype, "claim").mockImplementation(async function (this: JobStore, request) {
      const out = await claimJobs(this.db, request);
      claimed.push(...out.rows.map((r) => r.id));
      return out;
    });
    try {
      const seen: Record<string, unknown> = {};
      await ctx.jobManager.createJobs(Array.from({ length: 5 }, (_, i) => ({ id: `s${i}`, jobType: JobType.AGENT, name: `s${i}`, payload: { agent_name: "step" }, dependencies: i > 0 ? [`s${i - 1}`] : [] })));
      await startWorker({
        maxConcurrentJobs: 1,
        agentRegistry: {
          step: async (_p: unknown, c: JobContext) => {
            seen[c.job.id] = c.dependencyResults;
            return { step: c.job.id };
          },
        },
      });
      for (let i = 0; i < 5; i++) expect(await finished(`s${i}`)).toMatchObject({ status: "completed", attempts: 1 });
      expect(claimed).toEqual(["s0"]);
      expect(seen).toEqual({ s0: {}, s1: { s0: { step: "s0" } }, s2: { s1: { step: "s1" } }, s3: { s2: { step: "s2" } }, s4: { s3: { step: "s3" } } });
    } finally {
      claim.mockRestore();
    }
  });

  it("hands back, for other workers, a dependent it was handed while every slot runs a job (no prefetch)", async () => {
    const gate = deferred();
    await ctx.jobManager.createJobs([
      { id: "a", jobType: JobType.AGENT, name: "a", payload: { agent_name: "quick" }, priority: 10 },
      { id: "b", jobType: JobType.AGENT, name: "b", payload: { agent_name: "quick" }, dependencies: ["a"] },
      // Only the first worker may run x, which holds its one slot until the gate opens.
      { id: "x", jobType: JobType.AGENT, name: "x", payload: { agent_name: "slow" }, tags: ["first"] },
    ]);
    const registry = { quick: async () => "done", slow: async () => gate.promise.then(() => "slow done") };
    // a's completion (which hands b over) is written only once x holds the slot a freed: on a
    // loaded machine the write could otherwise come first and hand b to a free slot.
    const original = JobStore.prototype.complete;
    const handed: string[] = [];
    const complete = jest.spyOn(JobStore.prototype, "complete").mockImplementation(async function (this: JobStore, completions, handoff) {
      if (completions.some((c) => c.id === "a")) {
        await waitFor(async () => (await ctx.pool.query("SELECT 1 FROM jobs WHERE id = 'x' AND status = 'running'")).rowCount === 1, "x to take the slot");
      }
      const out = await original.call(this, completions, handoff);
      handed.push(...out.handed.map((r) => r.id));
      return out;
    });
    const first = await startWorker({ maxConcurrentJobs: 1, prefetch: 0, tags: ["first"], agentRegistry: registry });
    try {
      await waitFor(async () => (await ctx.pool.query("SELECT 1 FROM jobs WHERE id = 'x' AND status = 'running'")).rowCount === 1, "x to run on the first worker");
      expect(await finished("a")).toMatchObject({ status: "completed", lockedBy: first.workerId });
      const second = await startWorker({ maxConcurrentJobs: 1, agentRegistry: registry });
      // b does not wait for x's slot: the second worker runs it.
      expect(await finished("b")).toMatchObject({ status: "completed", attempts: 1, lockedBy: second.workerId });
      expect(handed).toEqual(["b"]); // handed to the first worker, and handed back
      expect((await ctx.pool.query("SELECT 1 FROM jobs WHERE id = 'x' AND status = 'running'")).rowCount).toBe(1);
    } finally {
      gate.resolve();
      complete.mockRestore();
    }
    expect(await finished("x")).toMatchObject({ status: "completed" });
  });

  it("hands back what a completion leased to it when the write committed but its reply was lost", async () => {
    const original = JobStore.prototype.complete;
    let lost = false;
    const complete = jest.spyOn(JobStore.prototype, "complete").mockImplementation(async function (this: JobStore, completions, handoff) {
      const out = await original.call(this, completions, handoff);
      if (!lost && out.handed.length > 0) {
        lost = true; // committed, but the worker never hears of it
        throw new Error("test: connection lost before the reply");
      }
      return out;
    });
    try {
      await ctx.jobManager.createJobs([
        { id: "a", jobType: JobType.AGENT, name: "a", payload: { agent_name: "quick" } },
        { id: "b", jobType: JobType.AGENT, name: "b", payload: { agent_name: "quick" }, dependencies: ["a"] },
      ]);
      // Leases far longer than the test: b must come back through the worker's heartbeat, not lease expiry.
      await startWorker({ maxConcurrentJobs: 1, staleTimeout: 600, heartbeatInterval: 0.3, agentRegistry: { quick: async () => "done" } });
      expect(await finished("b")).toMatchObject({ status: "completed", attempts: 1 });
      expect(lost).toBe(true);
    } finally {
      complete.mockRestore();
    }
  });
});

describe("Worker: wake-ups", () => {
  it("runs a chain without waiting for polls (completion and NOTIFY wake the worker)", async () => {
    await startWorker({ pollInterval: 60, agentRegistry: { step: async (p) => p ?? null } });
    await new Promise((r) => setTimeout(r, 200)); // let the first idle poll pass
    const jobs = Array.from({ length: 20 }, (_, i) => ({
      id: `step-${i}`,
      jobType: "agent" as const,
      name: `step ${i}`,
      payload: { agent_name: "step", parameters: i },
      dependencies: i > 0 ? [`step-${i - 1}`] : [],
    }));
    await ctx.jobManager.createJobs(jobs);
    expect((await finished("step-19")).result).toBe(19);
  });
  it("drains thousands of short jobs on wake-ups alone, without waiting for a poll", async () => {
    // Polls every 5 minutes: a wake-up lost anywhere (a slot freed while a claim round was ending) stalls the drain.
    const worker = await startWorker({ maxConcurrentJobs: 10, pollInterval: 300 });
    let done = 0;
    worker.on("job:complete", () => void done++);
    worker.addExecutor({ canExecute: () => true, execute: async () => null });
    for (let i = 0; i < 3; i++) await ctx.jobManager.createJobs(Array.from({ length: 1000 }, (_, n) => ({ jobType: "agent" as const, name: `short ${i}-${n}`, payload: { agent_name: "x" } })));
    await waitFor(async () => done === 3000, "3,000 short jobs to finish", 60_000);
  }, 90_000);

  it("the LISTEN connection comes back after its backend is terminated, and work goes on", async () => {
    await startWorker({ pollInterval: 60, agentRegistry: { step: async (p) => p ?? null } });
    const listeners = async () =>
      (
        await ctx.pool.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE application_name = 'skein-listener' AND datname = current_database() AND query LIKE 'LISTEN%'",
        )
      ).rows.map((r) => r.pid);
    const [before] = await waitFor(async () => ((await listeners()).length === 1 ? listeners() : undefined), "the listener to connect");
    await ctx.pool.query("SELECT pg_terminate_backend($1)", [before]);
    const [after] = await waitFor(async () => {
      const pids = await listeners();
      return pids.length === 1 && pids[0] !== before ? pids : undefined;
    }, "the listener to reconnect");
    expect(after).not.toBe(before);
    const job = await ctx.jobManager.createJob({ jobType: "agent", name: "after reconnect", payload: { agent_name: "step", parameters: 1 } });
    expect((await finished(job.id)).result).toBe(1);
  });
});

describe("history pruning", () => {
  it("prunes once per interval however many callers ask", async () => {
    await ctx.jobManager.createJob({ id: "old", jobType: "agent", name: "x" });
    await ctx.jobManager.cancelJob("old");
    await ctx.pool.query("UPDATE job_history SET completed_at = now() - interval '40 days'");
    await ctx.pool.query("UPDATE maintenance_runs SET last_run_at = '-infinity'");
    const outcomes = await Promise.all(Array.from({ length: 5 }, () => runHistoryPruning(ctx.prisma, { retentionDays: 30, intervalHours: 24 })));
    expect(outcomes.filter((o) => o.ran)).toEqual([{ ran: true, deleted: 1 }]);
    expect(await ctx.jobManager.getJob("old")).toBeNull();
  });
});

describe("planner statistics", () => {
  // Fills the tables without the producer's own statistics check, so that each test sees what it sets out to.
  const fill = async (thousands: number) => {
    const filler = new JobManager(ctx.prisma, { refreshStatistics: false });
    for (let i = 0; i < thousands; i++) await filler.createJobs(Array.from({ length: 1000 }, () => ({ jobType: JobType.AGENT, name: "fill" })));
  };
  const reltuples = async () => (await ctx.pool.query<{ n: number }>("SELECT reltuples AS n FROM pg_class WHERE oid = 'jobs'::regclass")).rows[0].n;

  it("analyses the job tables once they outgrow their planner statistics, so cached plans are made again", async () => {
    await ctx.pool.query("VACUUM ANALYZE jobs");
    const openGate = () => ctx.pool.query("UPDATE maintenance_runs SET last_run_at = '-infinity' WHERE task = 'analyze'");
    await openGate();
    const probe = await ctx.pool.connect();
    try {
      // A generic plan made while the table is empty, as a worker's prepared statements are after an idle spell.
      await probe.query("SET plan_cache_mode = force_generic_plan");
      await probe.query("PREPARE probe(text[]) AS SELECT id FROM jobs WHERE id = ANY($1)");
      const plan = async () => (await probe.query<{ "QUERY PLAN": string }>("EXPLAIN EXECUTE probe('{a}')")).rows.map((r) => r["QUERY PLAN"]).join("\n");
      await expect(plan()).resolves.toMatch(/Seq Scan on jobs/);
      // Still empty: nothing to do for jobs. (job_history may be analysed here: earlier tests' row
      // counts can reach the statistics after their TRUNCATE.)
      expect((await refreshPlannerStatistics(ctx.prisma)).analysed).not.toContain("jobs");
      await fill(10);
      await openGate();
      const outcomes = await Promise.all(Array.from({ length: 3 }, () => refreshPlannerStatistics(ctx.prisma)));
      const analysed = outcomes.filter((o) => o.analysed.length > 0);
      expect(analysed).toHaveLength(1); // one caller analyses
      expect(analysed[0].analysed).toContain("jobs");
      expect(analysed[0].notPermitted).toEqual([]);
      const { rows } = await ctx.pool.query<{ reltuples: number }>("SELECT reltuples FROM pg_class WHERE oid = 'jobs'::regclass");
      expect(rows[0].reltuples).toBeGreaterThan(5000);
      const replanned = await plan();
      expect(replanned).toMatch(/Index Scan on jobs_pkey|Index (Only )?Scan using jobs_pkey/);
      expect(replanned).not.toMatch(/Seq Scan/);
      await openGate();
      expect((await refreshPlannerStatistics(ctx.prisma)).analysed).not.toContain("jobs"); // up to date now
    } finally {
      await probe.query("DEALLOCATE ALL");
      probe.release();
    }
  });

  /**
   * Stale job tables (5,000 rows over statistics of an empty table, the gate open) and a client
   * logged in as a role with every right on them but ownership (and MAINTAIN): it may not analyse.
   */
  const withRoleThatMayNotAnalyse = async (test: (prisma: ReturnType<typeof createPrismaClient>) => Promise<void>) => {
    await ctx.pool.query("VACUUM ANALYZE jobs");
    await fill(5);
    await ctx.pool.query("UPDATE maintenance_runs SET last_run_at = '-infinity' WHERE task = 'analyze'");
    const role = `skein_user_${Math.random().toString(36).slice(2, 10)}`;
    await ctx.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
    const url = new URL(ctx.db.url);
    url.username = role;
    url.password = "pw";
    const prisma = createPrismaClient(url.toString(), { maxConnections: 2 });
    try {
      await ctx.pool.query(`GRANT USAGE ON SCHEMA skein TO ${role}`);
      await ctx.pool.query(`GRANT ALL ON ALL TABLES IN SCHEMA skein TO ${role}`); // every right but ownership (and MAINTAIN)
      await ctx.pool.query(`REVOKE MAINTAIN ON ALL TABLES IN SCHEMA skein FROM ${role}`).catch(() => undefined); // PostgreSQL 17+
      await test(prisma);
    } finally {
      await prisma.$disconnect();
      await ctx.pool.query(`REVOKE ALL ON ALL TABLES IN SCHEMA skein FROM ${role}`);
      await ctx.pool.query(`REVOKE USAGE ON SCHEMA skein FROM ${role}`);
      await ctx.pool.query(`DROP OWNED BY ${role}`);
      await ctx.pool.query(`DROP ROLE ${role}`);
    }
  };

  it("backs off for 10 minutes when this role may not analyse the tables (it does not own them)", async () => {
    await withRoleThatMayNotAnalyse(async (prisma) => {
      const first = await refreshPlannerStatistics(prisma);
      expect(first.analysed).not.toContain("jobs");
      expect(first.notPermitted).toContain("jobs");
      // Postponed: no worker tries again for 10 minutes (not every tick).
      const { rows } = await ctx.pool.query<{ postponed: boolean }>(
        "SELECT last_run_at > now() + interval '9 minutes' AS postponed FROM maintenance_runs WHERE task = 'analyze'",
      );
      expect(rows).toEqual([{ postponed: true }]);
      expect(await refreshPlannerStatistics(prisma)).toEqual({ analysed: [], notPermitted: [] });
    });
  });

  it("a producer whose role may not analyse the tables leaves them to the workers: it neither takes nor postpones the gate", async () => {
    await withRoleThatMayNotAnalyse(async (prisma) => {
      const check = new StatisticsWatch(databaseFor(prisma), silentLogger(), () => true, 1).wrote(1);
      expect(check).toBeDefined();
      await check;
      const { rows } = await ctx.pool.query<{ open: boolean }>("SELECT last_run_at = '-infinity' AS open FROM maintenance_runs WHERE task = 'analyze'");
      expect(rows).toEqual([{ open: true }]);
      expect(await reltuples()).toBeLessThan(1000);
      expect((await refreshPlannerStatistics(ctx.prisma)).analysed).toContain("jobs"); // the owner (a worker) still may
    });
  });

  it("tries again on the next interval when another session holds a table (autovacuum, a concurrent ANALYZE)", async () => {
    await ctx.pool.query("VACUUM ANALYZE jobs");
    await fill(5);
    const openGate = () => ctx.pool.query("UPDATE maintenance_runs SET last_run_at = '-infinity' WHERE task = 'analyze'");
    const holder = await ctx.pool.connect();
    try {
      await holder.query("BEGIN");
      await holder.query("LOCK jobs IN SHARE UPDATE EXCLUSIVE MODE"); // what VACUUM and ANALYZE take
      await openGate();
      expect((await refreshPlannerStatistics(ctx.prisma)).analysed).toContain("jobs"); // asked; PostgreSQL skipped it
      expect(await reltuples()).toBeLessThan(1000);
      const { rows } = await ctx.pool.query<{ postponed: boolean }>("SELECT last_run_at > now() AS postponed FROM maintenance_runs WHERE task = 'analyze'");
      expect(rows).toEqual([{ postponed: false }]);
    } finally {
      await holder.query("ROLLBACK");
      holder.release();
    }
    await openGate(); // the next interval
    expect((await refreshPlannerStatistics(ctx.prisma)).analysed).toContain("jobs");
    expect(await reltuples()).toBeGreaterThan(3000);
  });

  it("a running worker analyses the tables by itself once a burst outgrows their statistics", async () => {
    await ctx.pool.query("VACUUM ANALYZE jobs");
    await ctx.pool.query("ALTER TABLE jobs SET (autovacuum_enabled = false)"); // only the worker may analyse it here
    try {
      await ctx.pool.query("UPDATE maintenance_runs SET last_run_at = '-infinity' WHERE task = 'analyze'");
      await startWorker({ queues: ["elsewhere"] }); // claims nothing here: the jobs stay
      await fill(5);
      await waitFor(
        async () => {
          const { rows } = await ctx.pool.query<{ n: number }>("SELECT reltuples AS n FROM pg_class WHERE oid = 'jobs'::regclass");
          return rows[0].n > 3000 ? true : undefined;
        },
        "the worker to analyse jobs",
        10_000,
      );
    } finally {
      await ctx.pool.query("ALTER TABLE jobs RESET (autovacuum_enabled)");
    }
  });

  it("a producer with no worker running analyses the tables once it has created 1,000 jobs", async () => {
    await ctx.pool.query("VACUUM ANALYZE jobs");
    await ctx.pool.query("ALTER TABLE jobs SET (autovacuum_enabled = false)"); // only the producer may analyse it here
    try {
      await ctx.pool.query("UPDATE maintenance_runs SET last_run_at = '-infinity' WHERE task = 'analyze'");
      const producer = new JobManager(ctx.prisma);
      await producer.createJobs(Array.from({ length: 600 }, () => ({ jobType: JobType.AGENT, name: "fill" })));
      for (let i = 0; i < 400; i++) await producer.createJob({ jobType: JobType.AGENT, name: "one" });
      await waitFor(async () => ((await reltuples()) >= 1000 ? true : undefined), "the producer to analyse jobs", 10_000);
    } finally {
      await ctx.pool.query("ALTER TABLE jobs RESET (autovacuum_enabled)");
    }
  });
});
