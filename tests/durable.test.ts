import { spawnSync } from "node:child_process";
import path from "node:path";
import { Worker, type Job, type JobContext, type WorkerOptions } from "../src";
import { databaseFor } from "../src/db/database";
import { readStatus } from "../src/db/sql/status";
import { truncateAll, useTestDatabase } from "./helpers/db";
import { waitFor } from "./helpers/wait";

/**
 * Durable workflows on real PostgreSQL: delegation that keeps its promises
 * (timeouts in every mode, cancellation reaching children, detached ones
 * left alone), idempotent delegation across retries, durable steps and
 * sleeps, parents that wait without a slot, and where every job came from.
 */

const ctx = useTestDatabase();
const workers: Worker[] = [];
beforeEach(async () => {
  await truncateAll(ctx.pool);
  await ctx.pool.query("TRUNCATE job_events, job_logs, job_steps, schedules, schedule_ticks, workers");
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop({ force: true })));
});

type Agent = (params: unknown, c: JobContext) => Promise<unknown>;

async function startWorker(agents: Record<string, Agent>, options: Partial<WorkerOptions> = {}): Promise<Worker> {
  const worker = new Worker({ prisma: ctx.prisma, pollInterval: 0.2, retryBackoff: { baseSeconds: 0.05, maxSeconds: 0.1 }, agentRegistry: agents as never, ...options });
  workers.push(worker);
  await worker.start();
  return worker;
}

const finished = (id: string, timeoutMs = 15_000) =>
  waitFor(
    async () => {
      const job = await ctx.jobManager.getJob(id);
      return job && job.archived ? job : undefined;
    },
    `job ${id} to finish`,
    timeoutMs,
  );

const agentJob = (id: string, agent: string, parameters: unknown = null, extra: Record<string, unknown> = {}) => ({
  id,
  jobType: "agent" as const,
  name: id,
  payload: { agent_name: agent, parameters: parameters as never },
  maxRetries: 0,
  ...extra,
});
const spec = (agent: string, parameters: unknown = null, extra: Record<string, unknown> = {}) => ({
  jobType: "agent" as const,
  name: agent,
  payload: { agent_name: agent, parameters: parameters as never },
  maxRetries: 0,
  ...extra,
});

/** Resolves after `ms`, or rejects when the signal aborts (as a well-behaved executor does). */
function sleepFor(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
    });
  });
}

const children = async (parentId: string) => (await ctx.jobManager.listJobs({ parentId, limit: 100 })).concat(await ctx.jobManager.getJobHistory({ parentId, limit: 100 }));

describe("delegation keeps its promises", () => {
  it("a wait timeout holds on a one-slot worker: at the deadline the child is aborted and cancelled, and the parent fails saying so", async () => {
    let aborted = false;
    await startWorker(
      {
        parent: async (_p, c) => c.delegate(spec("slow"), { wait: true, timeoutSeconds: 1 }),
        slow: async (_p, c) => {
          try {
            await sleepFor(8000, c.signal);
          } catch (error) {
            aborted = true;
            throw error;
          }
          return "too late";
        },
      },
      { maxConcurrentJobs: 1 },
    );
    const started = Date.now();
    await ctx.jobManager.createJob(agentJob("p", "parent"));
    const parent = await finished("p");
    expect(Date.now() - started).toBeLessThan(6000);
    expect(parent.status).toBe("failed");
    expect(parent.errorMessage).toMatch(/did not finish within 1 s; it was cancelled/);
    const [child] = await children("p");
    expect(child).toMatchObject({ status: "cancelled", result: null });
    await waitFor(async () => aborted, "the child's signal to abort");
  });

  it("cascade cancel of a waiting parent reaches its children and grandchildren, aborting the running ones", async () => {
    const abortedIds: string[] = [];
    const hang: Agent = async (_p, c) => {
      try {
        await sleepFor(60_000, c.signal);
      } catch (error) {
        abortedIds.push(c.job.name);
        throw error;
      }
    };
    await startWorker(
      {
        parent: async (_p, c) => c.delegate(spec("middle"), { wait: true }),
        middle: async (_p, c) => {
          await c.delegate(spec("grandchild"));
          return hang(null, c);
        },
        grandchild: hang,
      },
      { maxConcurrentJobs: 4, maintenance: false },
    );
    await ctx.jobManager.createJob(agentJob("p", "parent"));
    await waitFor(async () => abortedIds.length === 0 && (await ctx.pool.query("SELECT count(*)::int AS n FROM jobs WHERE status = 'running'")).rows[0].n === 2, "middle and grandchild to run");
    expect((await ctx.jobManager.getJob("p"))?.status).toBe("pending"); // parked: no slot, no lease
    expect((await ctx.jobManager.explain("p"))?.summary).toMatch(/parked until 1 delegated job ends: /);
    expect((await readStatus(databaseFor(ctx.prisma))).waiting.find((w) => w.id === "p")?.reason).toMatch(/^parked until its delegated jobs end: /);
    await ctx.jobManager.cancelJob("p", { cascade: true });
    await waitFor(async () => abortedIds.length === 2, "both running descendants to be aborted");
    const [middle] = await children("p");
    expect(middle.status).toBe("cancelled");
    const [grandchild] = await children(middle.id);
    expect(grandchild.status).toBe("cancelled");
    expect(abortedIds.sort()).toEqual(["grandchild", "middle"]);
  });

  it("a parent's own cancellation (no cascade) and its final failure cancel its children; detached children live on", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    await startWorker(
      {
        owner: async (_p, c) => {
          await c.delegate(spec("bound", null, { key: "bound" }), { key: "bound" });
          await c.delegate(spec("free"), { key: "free", detached: true });
          await gate;
          throw new Error("the owner broke");
        },
        bound: async (_p, c) => sleepFor(60_000, c.signal),
        free: async () => {
          await gate;
          return "survived";
        },
      },
      { maxConcurrentJobs: 4 },
    );
    await ctx.jobManager.createJob(agentJob("owner", "owner"));
    await waitFor(async () => (await ctx.pool.query("SELECT count(*)::int AS n FROM jobs WHERE status = 'running'")).rows[0].n === 3, "owner and both children to run");
    release();
    expect((await finished("owner")).status).toBe("failed");
    const byKey = Object.fromEntries((await children("owner")).map((j) => [j.delegationKey, j]));
    expect((await finished(byKey.bound.id)).status).toBe("cancelled");
    expect(await finished(byKey.free.id)).toMatchObject({ status: "completed", result: "survived", detached: true });
  });
});

describe("idempotent delegation", () => {
  it("a retried parent re-attaches to the children it made: nothing runs twice", async () => {
    const runs: Record<string, number> = {};
    await startWorker({
      parent: async (_p, c) => {
        const a = await c.delegate(spec("count", "a"), { wait: true });
        const b = await c.delegate(spec("count", "b"), { wait: true, key: "second" });
        if (c.job.retryCount < 2) throw new Error(`flaky parent, try ${c.job.retryCount}`);
        return [a, b];
      },
      count: async (p) => {
        runs[p as string] = (runs[p as string] ?? 0) + 1;
        return `${p as string} done`;
      },
    });
    await ctx.jobManager.createJob(agentJob("p", "parent", null, { maxRetries: 3 }));
    expect(await finished("p")).toMatchObject({ status: "completed", result: ["a done", "b done"], retryCount: 2 });
    expect(runs).toEqual({ a: 1, b: 1 });
    const made = await children("p");
    expect(made.map((j) => j.delegationKey).sort()).toEqual(["#1", "second"]);
  });

  it("a failed child fails its parent for good, unless retryFailed: then the parent's retry retries the child", async () => {
    const tries: Record<string, number> = {};
    const flaky: Agent = async (p) => {
      tries[p as string] = (tries[p as string] ?? 0) + 1;
      if (tries[p as string] === 1) throw new Error("first try fails");
      return "ok";
    };
    await startWorker({
      strict: async (_p, c) => c.delegate(spec("flaky", "strict"), { wait: true }),
      lenient: async (_p, c) => c.delegate(spec("flaky", "lenient"), { wait: true, retryFailed: true }),
      flaky,
    });
    await ctx.jobManager.createJob(agentJob("strict", "strict", null, { maxRetries: 3 }));
    await ctx.jobManager.createJob(agentJob("lenient", "lenient", null, { maxRetries: 3 }));
    const strict = await finished("strict");
    expect(strict).toMatchObject({ status: "failed", retryCount: 0 });
    expect(strict.errorMessage).toMatch(/delegated job .* failed: first try fails/);
    expect(await finished("lenient")).toMatchObject({ status: "completed", result: "ok", retryCount: 1 });
    expect(tries).toEqual({ strict: 1, lenient: 2 });
    expect(await children("lenient")).toHaveLength(1);
  });

  it("refuses a key used twice in one run, and keys that could clash with call-order keys", async () => {
    await startWorker({
      twice: async (_p, c) => {
        await c.delegate(spec("noop"), { key: "k" });
        await c.delegate(spec("noop"), { key: "k" });
      },
      hash: async (_p, c) => c.delegate(spec("noop"), { key: "#1" }),
      noop: async () => null,
    });
    await ctx.jobManager.createJobs([agentJob("twice", "twice", null, { maxRetries: 2 }), agentJob("hash", "hash", null, { maxRetries: 2 })]);
    expect(await finished("twice")).toMatchObject({ status: "failed", retryCount: 0, errorMessage: expect.stringMatching(/key "k" is used twice/) });
    expect(await finished("hash")).toMatchObject({ status: "failed", retryCount: 0, errorMessage: expect.stringMatching(/not starting with "#"/) });
  });
});

describe("durable steps and sleeps", () => {
  it("a step's stored result comes back on later attempts without running it again; results are JSON, as stored", async () => {
    const ran: string[] = [];
    await startWorker({
      job: async (_p, c) => {
        const a = await c.step("fetch", async () => {
          ran.push("fetch");
          return { at: new Date("2026-01-02T03:04:05Z"), n: 1 };
        });
        const b = await c.step("fetch", async () => {
          ran.push("fetch again");
          return 2;
        });
        const nothing = await c.step("side effect", async () => void ran.push("side effect"));
        if (c.job.retryCount === 0) throw new Error("crash after three steps");
        const last = await c.step("last", async () => {
          ran.push("last");
          return [a, b, nothing];
        });
        return last;
      },
    });
    await ctx.jobManager.createJob(agentJob("j", "job", null, { maxRetries: 1 }));
    const job = await finished("j");
    expect(job).toMatchObject({ status: "completed", retryCount: 1 });
    expect(job.result).toEqual([{ at: "2026-01-02T03:04:05.000Z", n: 1 }, 2, null]);
    expect(ran).toEqual(["fetch", "fetch again", "side effect", "last"]);
    const steps = await ctx.jobManager.getJobSteps("j");
    expect(steps?.map((s) => [s.name, s.attempt])).toEqual([
      ["fetch", 1],
      ["fetch#2", 1],
      ["side effect", 1],
      ["last", 2],
    ]);
    const events = await ctx.jobManager.getJobEvents("j");
    expect(events?.filter((e) => e.event === "step").map((e) => e.detail?.name)).toEqual(["fetch", "fetch#2", "side effect", "last"]);
    expect(await ctx.jobManager.getJobSteps("nope")).toBeNull();
  });

  it("a step that returns what JSON cannot hold, or a bad name, fails the job for good", async () => {
    await startWorker({
      fn: async (_p, c) => c.step("bad", async () => () => 1),
      name: async (_p, c) => c.step("sleep:x", async () => 1),
    });
    await ctx.jobManager.createJobs([agentJob("fn", "fn", null, { maxRetries: 3 }), agentJob("name", "name", null, { maxRetries: 3 })]);
    expect(await finished("fn")).toMatchObject({ status: "failed", retryCount: 0, errorMessage: expect.stringMatching(/step "bad".*JSON cannot hold/) });
    expect(await finished("name")).toMatchObject({ status: "failed", retryCount: 0, errorMessage: expect.stringMatching(/ctx.step: the name must/) });
  });

  it("ctx.sleep parks the job without a slot and resumes it later; the steps before it ran once", async () => {
    const ran: string[] = [];
    await startWorker(
      {
        sleeper: async (_p, c) => {
          await c.step("before", async () => void ran.push("before"));
          await c.sleep("nap", 5000); // long enough that a loaded machine still sees it asleep
          ran.push("after");
          return "rested";
        },
        other: async () => void ran.push("other"),
      },
      { maxConcurrentJobs: 1 },
    );
    const started = Date.now();
    await ctx.jobManager.createJob(agentJob("s", "sleeper"));
    // "before" first: a job seen pending after its step ran is parked (not yet claimed would also be pending).
    await waitFor(async () => ran.includes("before") && (await ctx.jobManager.getJob("s"))?.status === "pending", "the sleeper to park");
    expect((await ctx.jobManager.explain("s"))?.reasons.map((r) => r.code)).toContain("sleeping");
    const status = await readStatus(databaseFor(ctx.prisma));
    expect(status.waiting.find((w) => w.id === "s")?.reason).toMatch(/^sleeping \(ctx.sleep\) until /);
    // The one slot is free while it sleeps.
    await ctx.jobManager.createJob(agentJob("o", "other"));
    expect((await finished("o")).status).toBe("completed");
    expect((await ctx.jobManager.getJob("s"))?.status).toBe("pending");
    expect(await finished("s")).toMatchObject({ status: "completed", result: "rested" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(4900);
    expect(ran).toEqual(["before", "other", "after"]);
  });
});

describe("waiting without a slot", () => {
  it("1,000 parents each waiting on 10 children all finish on one worker with 4 slots", async () => {
    const parents = 1000;
    await startWorker(
      {
        parent: async (p, c) => {
          const results = (await c.delegateAll(
            Array.from({ length: 10 }, (_, i) => spec("child", i)),
            { wait: true },
          )) as number[];
          return results.reduce((a, b) => a + b, 0) + (p as number);
        },
        child: async (p) => p as number,
      },
      { maxConcurrentJobs: 4, prefetch: 16 },
    );
    await ctx.jobManager.createJobs(Array.from({ length: parents }, (_, i) => agentJob(`p${i}`, "parent", i)));
    await waitFor(async () => (await ctx.pool.query("SELECT count(*)::int AS n FROM jobs")).rows[0].n === 0, "every job to finish", 120_000);
    const { rows } = await ctx.pool.query<{ status: string; n: number }>("SELECT status, count(*)::int AS n FROM job_history GROUP BY status");
    expect(rows).toEqual([{ status: "completed", n: parents * 11 }]);
    expect((await ctx.jobManager.getJob("p7"))?.result).toBe(45 + 7);
  }, 180_000);
});

describe("provenance", () => {
  it("scheduled jobs record their schedule and tick; listings filter by name, schedule, parent and creation time", async () => {
    const t0 = new Date("2030-01-01T00:00:00Z");
    await ctx.jobManager.createSchedule({ name: "hourly", intervalSeconds: 3600, jobTemplate: { jobType: "agent", payload: { agent_name: "noop" } } }, { now: t0 });
    const [tick] = await ctx.jobManager.runDueSchedules({ now: new Date("2030-01-01T01:00:05Z") });
    const scheduled = (await ctx.jobManager.getJob(tick.jobId)) as Job;
    expect(scheduled).toMatchObject({ scheduleName: "hourly", scheduledFor: new Date("2030-01-01T01:00:00Z"), name: "hourly" });
    const before = new Date();
    await ctx.jobManager.createJobs([agentJob("a", "noop"), agentJob("b", "noop")]);
    await ctx.jobManager.createJobs([agentJob("c1", "noop")], { parent: { id: "a", tenant: null, taskId: null } });
    const ids = (jobs: Job[]) => jobs.map((j) => j.id).sort();
    expect(ids(await ctx.jobManager.listJobs({ scheduleName: "hourly" }))).toEqual([tick.jobId]);
    expect(ids(await ctx.jobManager.listJobs({ name: "b" }))).toEqual(["b"]);
    expect(ids(await ctx.jobManager.listJobs({ parentId: "a" }))).toEqual(["c1"]);
    expect(ids(await ctx.jobManager.listJobs({ createdAfter: before }))).toEqual(["a", "b", "c1"]);
    expect(ids(await ctx.jobManager.listJobs({ createdBefore: before }))).toEqual([tick.jobId]);
    await ctx.jobManager.cancelJob(tick.jobId);
    expect(ids(await ctx.jobManager.getJobHistory({ scheduleName: "hourly" }))).toEqual([tick.jobId]);
    expect(ids(await ctx.jobManager.getJobHistory({ scheduleName: "other" }))).toEqual([]);
    await expect(ctx.jobManager.listJobs({ createdAfter: "yesterday" })).rejects.toMatchObject({ field: "createdAfter" });
    await expect(ctx.jobManager.getJobHistory({ name: "x\u0000" })).rejects.toMatchObject({ field: "name" });
  });
});

describe("the README's runnable example", () => {
  it("npm run example:durable: a retry resumes after the stored steps and re-attaches to the children", async () => {
    const root = path.resolve(__dirname, "..");
    const run = spawnSync(process.execPath, [path.join(root, "node_modules", "tsx", "dist", "cli.mjs"), "scripts/durable_workflow.ts"], {
      cwd: root,
      encoding: "utf8",
      timeout: 120_000,
      env: { ...process.env, SKEIN_DATABASE_URL: ctx.db.url, DATABASE_URL: "" },
    });
    const output = `${run.stdout}${run.stderr}`;
    if (run.status !== 0) throw new Error(`the example failed:\n${output}`);
    expect(output).toMatch(/research: completed after \d+ attempts \(1 retry\)/);
    expect(output).toMatch(/find sources ran 1 time\(s\)/);
    expect(output).toMatch(/summarise ran 2 time\(s\)/);
    expect(output).toMatch(/write report ran 1 time\(s\)/);
    expect(output).toMatch(/stored steps: find sources \(attempt 1\), sleep:cool down \(attempt \d\), write report \(attempt \d\)/);
    expect(output).toMatch(/children: pricing-(papers|news) completed, pricing-(papers|news) completed/);
    expect(output).toMatch(/timeline: .*parked.*retried.*parked.*completed/);
  }, 150_000);
});
