import { JobManager, nextCronTime, ValidationError, Worker, type JobContext, type WorkerOptions } from "../src";
import { createPrismaClient } from "../src";
import { truncateAll, useTestDatabase } from "./helpers/db";
import { deferred, waitFor } from "./helpers/wait";

const ctx = useTestDatabase();
const workers: Worker[] = [];
beforeEach(async () => {
  await truncateAll(ctx.pool);
  await ctx.pool.query("TRUNCATE job_events, job_logs, schedules, schedule_ticks, workers");
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop({ force: true })));
});

async function startWorker(agents: Record<string, (params: unknown, c: JobContext) => Promise<unknown>>, options: Partial<WorkerOptions> = {}): Promise<Worker> {
  const worker = new Worker({ prisma: ctx.prisma, pollInterval: 0.2, retryBackoff: { baseSeconds: 0.05, maxSeconds: 0.1 }, agentRegistry: agents as never, maintenance: false, ...options });
  workers.push(worker);
  await worker.start();
  return worker;
}

const finished = (id: string) =>
  waitFor(async () => {
    const job = await ctx.jobManager.getJob(id);
    return job && job.archived ? job : undefined;
  }, `job ${id} to finish`);

const agentJob = (id: string, agent: string, parameters: unknown = null, extra: Record<string, unknown> = {}) => ({
  id,
  jobType: "agent" as const,
  name: id,
  payload: { agent_name: agent, parameters: parameters as never },
  maxRetries: 0,
  ...extra,
});

describe("delegation", () => {
  it("a job on a one-slot worker delegates to a child, waits for its result, and completes", async () => {
    await startWorker(
      {
        parent: async (_p, c) => {
          const answer = await c.delegate({ jobType: "agent", name: "child", payload: { agent_name: "child", parameters: 20 } }, { wait: true, timeoutSeconds: 30 });
          return { doubled: answer };
        },
        child: async (p) => (p as number) * 2,
      },
      { maxConcurrentJobs: 1 },
    );
    await ctx.jobManager.createJob(agentJob("p", "parent"));
    expect(await finished("p")).toMatchObject({ status: "completed", result: { doubled: 40 } });
    const parent = await ctx.jobManager.getJob("p");
    expect(parent?.childIds).toHaveLength(1);
    const child = await ctx.jobManager.getJob(parent?.childIds?.[0] as string);
    expect(child).toMatchObject({ parentId: "p", status: "completed", result: 40 });
  });

  it("a one-slot worker that claims ahead (prefetch) runs a delegated child it holds in the parent's slot", async () => {
    await startWorker(
      {
        parent: async (_p, c) => c.delegateAll([1, 2, 3].map((n) => ({ jobType: "agent" as const, name: `child ${n}`, payload: { agent_name: "child", parameters: n } })), { wait: true, timeoutSeconds: 30 }),
        child: async (p) => (p as number) * 2,
      },
      { maxConcurrentJobs: 1, prefetch: 10 },
    );
    await ctx.jobManager.createJob(agentJob("p", "parent"));
    expect(await finished("p")).toMatchObject({ status: "completed", result: [2, 4, 6] });
  });

  it("delegateAll fans out and gathers results in order, nested delegation included", async () => {
    await startWorker(
      {
        root: async (_p, c) => c.delegateAll([1, 2, 3].map((n) => ({ jobType: "agent" as const, name: `mid ${n}`, payload: { agent_name: "mid", parameters: n } })), { wait: true }),
        mid: async (p, c) => (await c.delegate({ jobType: "agent", name: "leaf", payload: { agent_name: "leaf", parameters: p as number } }, { wait: true })) as number,
        leaf: async (p) => (p as number) * 10,
      },
      { maxConcurrentJobs: 1 },
    );
    await ctx.jobManager.createJob(agentJob("root", "root"));
    expect((await finished("root")).result).toEqual([10, 20, 30]);
  });

  it("a child's failure is thrown in the parent", async () => {
    await startWorker({
      parent: async (_p, c) => c.delegate({ jobType: "agent", name: "bad", payload: { agent_name: "bad" }, maxRetries: 0 }, { wait: true }),
      bad: async () => {
        throw new Error("child broke");
      },
    });
    await ctx.jobManager.createJob(agentJob("p", "parent"));
    const parent = await finished("p");
    expect(parent.status).toBe("failed");
    expect(parent.errorMessage).toMatch(/delegated job ".*" \(key "#1"\) failed: child broke/);
  });

  it("a timeout fails the parent cleanly and cancels the child", async () => {
    const never = deferred();
    await startWorker(
      {
        parent: async (_p, c) => c.delegate({ jobType: "agent", name: "slow", payload: { agent_name: "slow" }, tags: ["elsewhere"] }, { wait: true, timeoutSeconds: 0.3 }),
        slow: async () => never.promise,
      },
      { maintenance: true },
    );
    await ctx.jobManager.createJob(agentJob("p", "parent"));
    const parent = await finished("p");
    expect(parent.status).toBe("failed");
    expect(parent.errorMessage).toMatch(/did not finish within 0.3 s; it was cancelled/);
    const child = await ctx.jobManager.getJob((await ctx.jobManager.getJob("p"))?.childIds?.[0] as string);
    expect(child?.status).toBe("cancelled");
  });

  it("without wait, delegate returns the created child at once", async () => {
    let childId = "";
    await startWorker({
      parent: async (_p, c) => {
        const child = await c.delegate({ jobType: "agent", name: "later", payload: { agent_name: "noop" }, runAt: new Date(Date.now() + 3600_000) });
        childId = child.id;
        return { child: child.id };
      },
    });
    await ctx.jobManager.createJob(agentJob("p", "parent", null, { tenant: "orgA" }));
    await finished("p");
    expect(await ctx.jobManager.getJob(childId)).toMatchObject({ status: "pending", parentId: "p", tenant: "orgA" });
  });
});

describe("recurring schedules", () => {
  const at = (iso: string) => new Date(iso);

  it("validates schedules", async () => {
    const jobTemplate = { jobType: "agent" as const, payload: { agent_name: "noop" } };
    await expect(ctx.jobManager.createSchedule({ name: "x", jobTemplate })).rejects.toThrow(/exactly one of cron or intervalSeconds/);
    await expect(ctx.jobManager.createSchedule({ name: "x", cron: "61 * * * *", jobTemplate })).rejects.toMatchObject({ field: "cron" });
    await expect(ctx.jobManager.createSchedule({ name: "x", cron: "* * * * *", timezone: "Mars/Base", jobTemplate })).rejects.toMatchObject({ field: "timezone" });
    await expect(ctx.jobManager.createSchedule({ name: "x", intervalSeconds: 0, jobTemplate })).rejects.toMatchObject({ field: "intervalSeconds" });
    await expect(ctx.jobManager.createSchedule({ name: "x", intervalSeconds: 5, jobTemplate: { jobType: "shell" } as never })).rejects.toBeInstanceOf(ValidationError);
    await ctx.jobManager.createSchedule({ name: "x", intervalSeconds: 5, jobTemplate });
    await expect(ctx.jobManager.createSchedule({ name: "x", intervalSeconds: 5, jobTemplate })).rejects.toMatchObject({ field: "name" });
  });

  it("computes cron ticks in a timezone, from an injected clock", () => {
    expect(nextCronTime("*/5 * * * *", "UTC", at("2026-11-24T10:02:30Z")).toISOString()).toBe("2026-11-24T10:05:00.000Z");
    expect(nextCronTime("0 9 * * *", "America/New_York", at("2026-11-24T10:00:00Z")).toISOString()).toBe("2026-11-24T14:00:00.000Z");
  });

  it("each tick enqueues exactly one job, however many schedulers run at once", async () => {
    const t0 = at("2030-01-01T00:00:00Z");
    await ctx.jobManager.createSchedule(
      { name: "every-5-min", cron: "*/5 * * * *", jobTemplate: { jobType: "agent", payload: { agent_name: "noop" } } },
      { now: t0 },
    );
    const clients = Array.from({ length: 5 }, () => createPrismaClient(ctx.db.url));
    const managers = clients.map((client) => new JobManager(client));
    try {
      const tick = at("2030-01-01T00:05:00Z");
      const fired = (await Promise.all(managers.map((m) => m.runDueSchedules({ now: tick })))).flat();
      expect(fired).toHaveLength(1);
      expect(fired[0]).toMatchObject({ schedule: "every-5-min", tickAt: tick });
      // Running again for the same moment does nothing more.
      expect(await managers[0].runDueSchedules({ now: at("2030-01-01T00:05:30Z") })).toEqual([]);
      const next = await managers[1].runDueSchedules({ now: at("2030-01-01T00:10:00Z") });
      expect(next.map((f) => f.tickAt.toISOString())).toEqual(["2030-01-01T00:10:00.000Z"]);
      const { rows } = await ctx.pool.query("SELECT count(*)::int AS n FROM jobs");
      expect(rows[0].n).toBe(2);
    } finally {
      // Their pools' idle connections would keep the test process alive for 10 s.
      await Promise.all(clients.map((client) => client.$disconnect()));
    }
  });

  it("missed ticks: 'once' runs one job for the latest missed tick; 'skip' runs none when too late", async () => {
    const t0 = at("2030-01-01T00:00:00Z");
    const jobTemplate = { jobType: "agent" as const, payload: { agent_name: "noop" } };
    await ctx.jobManager.createSchedule({ name: "once", intervalSeconds: 3600, jobTemplate }, { now: t0 });
    await ctx.jobManager.createSchedule({ name: "skip", intervalSeconds: 3600, jobTemplate, catchUp: "skip" }, { now: t0 });
    // No scheduler ran from 00:00 to 05:30: the ticks of 01:00 to 05:00 were missed.
    const fired = await ctx.jobManager.runDueSchedules({ now: at("2030-01-01T05:30:00Z") });
    expect(fired.map((f) => [f.schedule, f.tickAt.toISOString()])).toEqual([["once", "2030-01-01T05:00:00.000Z"]]);
    const schedules = await ctx.jobManager.listSchedules();
    expect(schedules.map((s) => s.nextRunAt.toISOString())).toEqual(["2030-01-01T06:00:00.000Z", "2030-01-01T06:00:00.000Z"]);
    // On time (within the 60 s grace), "skip" fires too.
    const onTime = await ctx.jobManager.runDueSchedules({ now: at("2030-01-01T06:00:10Z") });
    expect(onTime.map((f) => f.schedule).sort()).toEqual(["once", "skip"]);
  });

  it("pause, resume, list and delete", async () => {
    const t0 = at("2030-01-01T00:00:00Z");
    await ctx.jobManager.createSchedule({ name: "s", intervalSeconds: 60, jobTemplate: { jobType: "agent", payload: { agent_name: "noop" } } }, { now: t0 });
    expect((await ctx.jobManager.pauseSchedule("s")).paused).toBe(true);
    expect(await ctx.jobManager.runDueSchedules({ now: at("2030-01-01T00:10:00Z") })).toEqual([]);
    const resumed = await ctx.jobManager.resumeSchedule("s", { now: at("2030-01-01T00:10:30Z") });
    expect(resumed).toMatchObject({ paused: false });
    expect(resumed.nextRunAt.toISOString()).toBe("2030-01-01T00:11:00.000Z");
    expect((await ctx.jobManager.listSchedules()).map((s) => s.name)).toEqual(["s"]);
    expect(await ctx.jobManager.deleteSchedule("s")).toBe(true);
    expect(await ctx.jobManager.deleteSchedule("s")).toBe(false);
    await expect(ctx.jobManager.pauseSchedule("s")).rejects.toThrow(/schedule "s" not found/);
  });

  it("a worker runs the scheduler and the scheduled job", async () => {
    let ran = 0;
    await ctx.jobManager.createSchedule({ name: "fast", intervalSeconds: 1, jobTemplate: { jobType: "agent", payload: { agent_name: "tick" } } });
    await startWorker({ tick: async () => ++ran }, { maintenance: true });
    await waitFor(async () => ran >= 1, "a scheduled job to run", 10_000);
  });
});

describe("job logs and events", () => {
  it("stores ctx.log lines per job, capped, readable after the job finished", async () => {
    await startWorker({
      chatty: async (p, c) => {
        c.log.info("starting", { step: 1 });
        for (let i = 0; i < (p as number); i++) c.log.debug(`line ${i}`);
        c.log.warn("done");
        return null;
      },
    });
    await ctx.jobManager.createJobs([agentJob("few", "chatty", 3), agentJob("many", "chatty", 1500)]);
    await finished("few");
    await finished("many");
    const few = await ctx.jobManager.getJobLogs("few");
    expect(few.map((l) => [l.level, l.message])).toEqual([["info", "starting"], ["debug", "line 0"], ["debug", "line 1"], ["debug", "line 2"], ["warn", "done"]]);
    expect(few[0].fields).toEqual({ step: 1 });
    const after = await ctx.jobManager.getJobLogs("few", { after: few[2].id });
    expect(after.map((l) => l.message)).toEqual(["line 2", "done"]);
    const many = await ctx.jobManager.getJobLogs("many", { limit: 5000 });
    expect(many).toHaveLength(1001);
    expect(many[1000].message).toMatch(/log truncated: 502 more line\(s\) dropped/);
  });

  it("records every state change with its time and worker, kept in history", async () => {
    let calls = 0;
    const worker = await startWorker({
      flaky: async () => {
        if (++calls === 1) throw new Error("first try fails");
        return "ok";
      },
    });
    await ctx.jobManager.createJobs([agentJob("dep", "flaky", null, { maxRetries: 2 }), agentJob("after", "noop", null, { dependencies: ["dep"] })]);
    await finished("after");
    const events = (await ctx.jobManager.getJobEvents("dep")) ?? [];
    expect(events.map((e) => e.event)).toEqual(["created", "ready", "started", "retried", "started", "completed"]);
    expect(events.filter((e) => e.event === "started").map((e) => [e.workerId, e.attempt])).toEqual([
      [worker.workerId, 1],
      [worker.workerId, 2],
    ]);
    expect(events[3].detail).toMatchObject({ error: "first try fails" });
    const after = (await ctx.jobManager.getJobEvents("after")) ?? [];
    expect(after.map((e) => e.event)).toEqual(["created", "ready", "started", "completed"]);
    expect(after[1].at.getTime()).toBeGreaterThanOrEqual(events[5].at.getTime() - 5);
    expect(await ctx.jobManager.getJobEvents("unknown")).toBeNull();
  });

  it("records cancellation and a lease lost to a rescue", async () => {
    await ctx.jobManager.createJobs([agentJob("c", "noop", null, { runAt: new Date(Date.now() + 3600_000) })]);
    await ctx.jobManager.cancelJob("c");
    expect(((await ctx.jobManager.getJobEvents("c")) ?? []).map((e) => e.event)).toEqual(["created", "cancelled"]);
  });
});
