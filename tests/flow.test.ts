import { JobType, ValidationError, Worker, type Job, type JobContext, type WorkerOptions } from "../src";
import { truncateAll, useTestDatabase } from "./helpers/db";
import { deferred, waitFor } from "./helpers/wait";

const ctx = useTestDatabase();
const workers: Worker[] = [];
beforeEach(async () => {
  await truncateAll(ctx.pool);
  await ctx.pool.query("TRUNCATE rate_limits, concurrency_limits, tenant_weights, tasks, workers");
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop({ force: true })));
});

async function startWorker(options: Partial<WorkerOptions> = {}, execute?: (job: Job, c: JobContext) => Promise<unknown>): Promise<Worker> {
  const worker = new Worker({ prisma: ctx.prisma, pollInterval: 0.2, retryBackoff: { baseSeconds: 0.05, maxSeconds: 0.2 }, ...options });
  if (execute) worker.addExecutor({ canExecute: () => true, execute });
  workers.push(worker);
  await worker.start();
  return worker;
}

const agent = (name: string, extra: Record<string, unknown> = {}) => ({ jobType: JobType.AGENT, name, payload: { agent_name: "noop" }, ...extra });
const history = async (id: string) => (await ctx.jobManager.getJob(id)) as Job;
const allFinished = (ids: string[]) =>
  waitFor(async () => {
    const { rows } = await ctx.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM job_history WHERE job_id = ANY($1)", [ids]);
    return rows[0].n === ids.length;
  }, `${ids.length} jobs to finish`);

describe("queues and tags", () => {
  it("a worker with queues serves only those; the others wait, and explain says why", async () => {
    await startWorker({ queues: ["emails"] });
    const [email, other] = await ctx.jobManager.createJobs([agent("send", { id: "email", queue: "emails" }), agent("crunch", { id: "other", queue: "reports" })]);
    await allFinished([email.id]);
    expect((await history(other.id)).status).toBe("pending");
    const why = await ctx.jobManager.explain(other.id);
    expect(why?.reasons.map((r) => r.code)).toEqual(["no_worker"]);
    expect(why?.summary).toMatch(/no live worker serves queue "reports"/);
  });

  it("a tagged job runs only on a worker whose tags include all of the job's", async () => {
    const plain = await startWorker({ workerId: "plain" });
    const gpu = await startWorker({ workerId: "gpu", tags: ["gpu", "big"] });
    const jobs = await ctx.jobManager.createJobs([
      ...Array.from({ length: 10 }, (_, i) => agent(`gpu ${i}`, { id: `gpu-${i}`, tags: ["gpu"] })),
      agent("needs two", { id: "gpu-big", tags: ["big", "gpu"] }),
      agent("needs more", { id: "gpu-tpu", tags: ["gpu", "tpu"] }),
    ]);
    await allFinished(jobs.slice(0, 11).map((j) => j.id));
    for (const job of jobs.slice(0, 11)) expect((await history(job.id)).lockedBy).toBe(gpu.workerId);
    expect((await history("gpu-tpu")).status).toBe("pending");
    expect((await ctx.jobManager.explain("gpu-tpu"))?.summary).toMatch(/no live worker serves queue "default" with tags \[gpu, tpu\]/);
    expect(plain.workerId).toBe("plain");
  });

  it("rejects bad queue, tag and key values, naming the field", async () => {
    for (const [input, field] of [
      [agent("x", { queue: "" }), "queue"],
      [agent("x", { tags: "gpu" }), "tags"],
      [agent("x", { tags: [""] }), "tags[0]"],
      [agent("x", { tenant: "  " }), "tenant"],
      [agent("x", { rateLimitCost: 0 }), "rateLimitCost"],
      [agent("x", { concurrencyKey: 5 }), "concurrencyKey"],
    ] as const) {
      await expect(ctx.jobManager.createJob(input as never)).rejects.toMatchObject({ name: "ValidationError", field });
    }
    expect(() => new Worker({ prisma: ctx.prisma, queues: [] })).toThrow(ValidationError);
  });
});

describe("priorities", () => {
  it("higher priority first; equal priority first-in, first-out by runAt", async () => {
    const base = Date.now() - 10_000;
    await ctx.jobManager.createJobs([
      agent("low", { id: "low", priority: 0, runAt: new Date(base) }),
      agent("high-late", { id: "high-late", priority: 10, runAt: new Date(base + 2000) }),
      agent("high-early", { id: "high-early", priority: 10, runAt: new Date(base + 1000) }),
      agent("mid", { id: "mid", priority: 5, runAt: new Date(base) }),
      agent("tenant-high", { id: "tenant-high", priority: 10, tenant: "orgA", runAt: new Date(base + 3000) }),
      agent("tenant-low", { id: "tenant-low", priority: 1, tenant: "orgA", runAt: new Date(base) }),
    ]);
    const order: string[] = [];
    await startWorker({ maxConcurrentJobs: 1 }, async (job) => {
      order.push(job.id);
      return null;
    });
    await allFinished(["low", "high-late", "high-early", "mid", "tenant-high", "tenant-low"]);
    const plain = order.filter((id) => !id.startsWith("tenant"));
    expect(plain).toEqual(["high-early", "high-late", "mid", "low"]);
    expect(order.indexOf("tenant-high")).toBeLessThan(order.indexOf("tenant-low"));
  });
});

describe("concurrency keys", () => {
  it("never runs more than N jobs of a key at once, while other jobs use the free slots", async () => {
    await ctx.jobManager.setConcurrencyLimit("customer-42", 2);
    let running = 0;
    let peak = 0;
    let plainStartedWhileCapped = 0;
    // The first capped jobs hold the key's two places until every plain job has started beside them.
    const plainDone = deferred();
    await startWorker({ maxConcurrentJobs: 6 }, async (job) => {
      if (job.concurrencyKey) {
        running++;
        peak = Math.max(peak, running);
        await Promise.race([plainDone.promise, new Promise((r) => setTimeout(r, 5_000).unref())]);
        running--;
      } else if (running === 2 && ++plainStartedWhileCapped === 12) {
        plainDone.resolve();
      }
      return null;
    });
    const capped = await ctx.jobManager.createJobs(Array.from({ length: 12 }, (_, i) => agent(`capped ${i}`, { concurrencyKey: "customer-42" })));
    await waitFor(async () => running === 2, "the key's two places to fill");
    const plain = await ctx.jobManager.createJobs(Array.from({ length: 12 }, (_, i) => agent(`plain ${i}`)));
    await allFinished([...capped, ...plain].map((j) => j.id));
    expect(peak).toBe(2);
    expect(plainStartedWhileCapped).toBe(12);
  });

  it("explain names a full concurrency key", async () => {
    await ctx.jobManager.setConcurrencyLimit("k", 1);
    const release = deferred();
    await startWorker({ maxConcurrentJobs: 4 }, async () => release.promise);
    await ctx.jobManager.createJobs([agent("a", { id: "a", concurrencyKey: "k" }), agent("b", { id: "b", concurrencyKey: "k" })]);
    await waitFor(async () => (await history("a")).status === "running" || (await history("b")).status === "running", "one to run");
    const waiting = (await history("a")).status === "running" ? "b" : "a";
    expect((await ctx.jobManager.explain(waiting))?.summary).toMatch(/concurrency key "k" is full \(1\/1 running\)/);
    release.resolve();
    await allFinished(["a", "b"]);
  });
});

describe("rate limits", () => {
  it("validates limits and stores them for every worker", async () => {
    await expect(ctx.jobManager.setRateLimit("openai", {})).rejects.toThrow(/exactly one of perSecond or perMinute/);
    await expect(ctx.jobManager.setRateLimit("openai", { perSecond: -1 })).rejects.toMatchObject({ field: "perSecond" });
    await expect(ctx.jobManager.setRateLimit("openai", { perSecond: 5, burst: 0 })).rejects.toMatchObject({ field: "burst" });
    const limit = await ctx.jobManager.setRateLimit("openai", { perSecond: 120 });
    expect(limit).toMatchObject({ key: "openai", perSecond: 120, burst: 12 });
    const perMinute = await ctx.jobManager.setRateLimit("gemini", { perMinute: 60, burst: 3 });
    expect(perMinute).toMatchObject({ perSecond: 1, burst: 3 });
    expect((await ctx.jobManager.getRateLimits()).map((l) => l.key)).toEqual(["gemini", "openai"]);
  });

  it("starts jobs of a key no faster than its rate, without stalling other keys", async () => {
    await ctx.jobManager.setRateLimit("slow", { perSecond: 20, burst: 1 });
    const starts: number[] = [];
    await startWorker({ maxConcurrentJobs: 8 }, async (job) => {
      if (job.rateLimitKey === "slow") starts.push(Date.now());
      return null;
    });
    const limited = await ctx.jobManager.createJobs(Array.from({ length: 21 }, (_, i) => agent(`slow ${i}`, { rateLimitKey: "slow" })));
    const free = await ctx.jobManager.createJobs(Array.from({ length: 50 }, (_, i) => agent(`free ${i}`)));
    await allFinished(free.map((j) => j.id));
    expect(starts.length).toBeLessThan(21); // the free jobs did not wait for the limited ones
    await allFinished(limited.map((j) => j.id));
    // 21 starts with a burst of 1 at 20/s take at least 1 s (20 refills).
    expect(starts[20] - starts[0]).toBeGreaterThanOrEqual(950);
  });

  it("a job costing more than the burst still runs, and its cost is charged", async () => {
    await ctx.jobManager.setRateLimit("tokens", { perSecond: 1, burst: 100 });
    await startWorker();
    const big = await ctx.jobManager.createJob(agent("big", { rateLimitKey: "tokens", rateLimitCost: 1000 }));
    await allFinished([big.id]);
    const [limit] = await ctx.jobManager.getRateLimits();
    expect(limit.tokens).toBeLessThan(-800); // in debt: the key waits until it is paid back
    const next = await ctx.jobManager.createJob(agent("next", { rateLimitKey: "tokens" }));
    await waitFor(async () => (await ctx.jobManager.explain(next.id))?.reasons.some((r) => r.code === "rate_limited"), "explain to say rate limited");
    expect((await ctx.jobManager.explain(next.id))?.summary).toMatch(/rate limit of key "tokens" \(next token in \d+ ms\)/);
  });

  it("ctx.rateLimited() returns the job to pending without using a retry and pauses the key", async () => {
    await ctx.jobManager.setRateLimit("openai", { perSecond: 100 });
    let calls = 0;
    await startWorker({}, async (_job, c) => {
      calls++;
      if (calls === 1) return c.rateLimited({ retryAfterSeconds: 0.5 });
      return { ok: true };
    });
    const job = await ctx.jobManager.createJob(agent("call", { rateLimitKey: "openai", maxRetries: 0 }));
    await waitFor(async () => (await ctx.jobManager.getRateLimits())[0].pausedUntil !== null, "the key to pause");
    const paused = await ctx.jobManager.explain(job.id);
    if (paused?.status === "pending") expect(paused.summary).toMatch(/paused by the provider|runAt is in the future/);
    await allFinished([job.id]);
    const done = await history(job.id);
    expect(done).toMatchObject({ status: "completed", retryCount: 0, result: { ok: true } });
    expect(calls).toBe(2);
  });
});

describe("fairness between tenants", () => {
  it("a small tenant's jobs start within the first claim rounds behind a large tenant's backlog", async () => {
    await ctx.jobManager.createJobs(Array.from({ length: 400 }, (_, i) => agent(`big ${i}`, { tenant: "big" })));
    const starts: string[] = [];
    const gate = deferred();
    let started = 0;
    await startWorker({ maxConcurrentJobs: 4 }, async (job) => {
      starts.push(job.tenant ?? "");
      if (++started === 8) gate.resolve();
      await new Promise((r) => setTimeout(r, 5));
      return null;
    });
    await gate.promise;
    const marker = starts.length;
    const small = await ctx.jobManager.createJobs(Array.from({ length: 10 }, (_, i) => agent(`small ${i}`, { tenant: "small" })));
    await allFinished(small.map((j) => j.id));
    const after = starts.slice(marker);
    const lastSmall = after.lastIndexOf("small");
    // Round-robin: while both tenants have work, they alternate; 10 small jobs need about 20 starts.
    expect(lastSmall).toBeLessThan(30);
    expect(after.slice(0, lastSmall + 1).filter((t) => t === "big").length).toBeLessThanOrEqual(20);
  });

  it("weights share slots in proportion", async () => {
    await ctx.jobManager.setTenantWeight("heavy", 3);
    await expect(ctx.jobManager.setTenantWeight("x", 0)).rejects.toMatchObject({ field: "weight" });
    await ctx.jobManager.createJobs([
      ...Array.from({ length: 120 }, (_, i) => agent(`heavy ${i}`, { tenant: "heavy" })),
      ...Array.from({ length: 120 }, (_, i) => agent(`light ${i}`, { tenant: "light" })),
    ]);
    const starts: string[] = [];
    await startWorker({ maxConcurrentJobs: 8 }, async (job) => {
      starts.push(job.tenant ?? "");
      return null;
    });
    await waitFor(async () => starts.length >= 120, "120 starts");
    const first = starts.slice(0, 120);
    const heavy = first.filter((t) => t === "heavy").length;
    const light = first.filter((t) => t === "light").length;
    expect(heavy / light).toBeGreaterThan(2);
    expect(heavy / light).toBeLessThan(4.5);
  });
});

describe("explain", () => {
  it("names dependencies, a future runAt, and the jobs queued ahead", async () => {
    await startWorker({ queues: ["nothing-here"] }); // a live worker that serves none of these
    await ctx.jobManager.createJobs([
      agent("first", { id: "first", queue: "q" }),
      agent("second", { id: "second", queue: "q" }),
      agent("child", { id: "child", dependencies: ["first"], queue: "q" }),
      agent("later", { id: "later", runAt: new Date(Date.now() + 60_000), queue: "q" }),
    ]);
    await ctx.pool.query("UPDATE workers SET queues = NULL"); // now it serves q (in the registry's view)
    expect((await ctx.jobManager.explain("child"))?.summary).toMatch(/^waiting on 1 dependency: first \("first", pending\)$/);
    expect((await ctx.jobManager.explain("later"))?.summary).toMatch(/^runAt is in the future \(in \d+ ms\)$/);
    expect((await ctx.jobManager.explain("second"))?.summary).toBe("queued behind 1 ready job");
    expect((await ctx.jobManager.explain("first"))?.summary).toBe("ready: next in line for a free worker slot");
    expect(await ctx.jobManager.explain("nope")).toBeNull();
  });
});

describe("tasks", () => {
  it("groups jobs for a tenant, counts them by status, and shows the current step", async () => {
    const task = await ctx.jobManager.createTask({
      tenant: "orgA",
      name: "import",
      jobs: [agent("a", { id: "t-a" }), agent("b", { id: "t-b", dependencies: ["t-a"] }), agent("c", { id: "t-c", tenant: "orgB" })],
    });
    expect(task).toMatchObject({ tenant: "orgA", totalJobs: 3, percentDone: 0, done: false, counts: { pending: 3 } });
    expect((await history("t-a")).tenant).toBe("orgA");
    expect((await history("t-c")).tenant).toBe("orgB");
    await startWorker({}, async (job, c) => {
      await c.task.setStep({ last: job.name });
      return null;
    });
    await allFinished(["t-a", "t-b", "t-c"]);
    const done = await ctx.jobManager.getTask(task.id);
    expect(done).toMatchObject({ percentDone: 100, done: true, counts: { completed: 3, pending: 0 } });
    expect(done?.currentStep).toHaveProperty("last");
    await expect(ctx.jobManager.createTask({ name: "empty", jobs: [] })).rejects.toMatchObject({ field: "jobs" });
    expect(await ctx.jobManager.getTask("unknown")).toBeNull();
  });
});
