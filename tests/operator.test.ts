import { truncateAll, useTestDatabase } from "./helpers/db";
import { useWorkerProcesses } from "./helpers/processes";
import { waitFor } from "./helpers/wait";

/** Operator controls with real worker processes: paused queues, quiet, drain, resume, tenants, concurrency at run time. */
const ctx = useTestDatabase();
const workers = useWorkerProcesses(ctx);

beforeEach(async () => {
  await truncateAll(ctx.pool);
  await ctx.pool.query("TRUNCATE workers, paused_queues, job_events, rate_limits");
});

const count = async (where: string, values: unknown[] = []) => (await ctx.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE ${where}`, values)).rows[0].n;
const finished = async (where: string, values: unknown[] = []) => (await ctx.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM job_history WHERE ${where}`, values)).rows[0].n;
const job = (id: string, queue: string, extra: Record<string, unknown> = {}) => ({ id, jobType: "agent" as const, name: id, queue, payload: { agent_name: "record" }, ...extra });
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it("a paused queue's jobs stay pending on every claim path (plain, prefetch, handoff, flow control) while other queues drain, and all run after resume", async () => {
  workers.start("--worker-id", "w1", "--max-concurrent-jobs", "4", "--prefetch", "20");
  await workers.registered(1);
  expect((await ctx.jobManager.pauseQueue("mail")).paused).toBe(true);
  await ctx.jobManager.setRateLimit("smtp", { perSecond: 100 });
  await ctx.jobManager.createJobs([
    ...Array.from({ length: 60 }, (_, i) => job(`d${i}`, "default")),
    ...Array.from({ length: 30 }, (_, i) => job(`m${i}`, "mail")), // plain claims and prefetch
    ...Array.from({ length: 10 }, (_, i) => job(`dep${i}`, "mail", { dependencies: [`d${i}`] })), // handed over by d<i>'s completion
    ...Array.from({ length: 10 }, (_, i) => job(`t${i}`, "mail", { tenant: "orgA", rateLimitKey: "smtp" })), // flow control
  ]);
  await waitFor(async () => (await finished("queue = 'default'")) === 60, "the default queue to drain");
  await pause(1500); // every path has had its chances: polls, notifications, completions handing over
  expect(await count("queue = 'mail' AND status = 'pending'")).toBe(50);
  expect(await finished("queue = 'mail'")).toBe(0);
  const explained = await ctx.jobManager.explain("m0");
  expect(explained?.reasons.map((r) => r.code)).toContain("queue_paused");
  const queues = await ctx.jobManager.listQueues();
  expect(queues.find((q) => q.name === "mail")).toMatchObject({ paused: true, ready: 50, running: 0 });
  await ctx.jobManager.resumeQueue("mail");
  await waitFor(async () => (await finished("queue = 'mail' AND status = 'completed'")) === 50, "the mail queue to run after resume", 30_000);
  expect(workers.log().filter((e) => e.event === "start")).toHaveLength(110);
});

it("pausing a queue hands back the jobs a worker holds claimed ahead; the one running finishes", async () => {
  workers.start("--worker-id", "w1", "--max-concurrent-jobs", "1", "--prefetch", "10");
  await workers.registered(1);
  await ctx.jobManager.createJobs(Array.from({ length: 8 }, (_, i) => ({ ...job(`s${i}`, "slow"), payload: { agent_name: "sleepy", parameters: { ms: 1500 } } })));
  await waitFor(async () => (await count("status = 'running'")) >= 5, "the worker to hold jobs ahead");
  await ctx.jobManager.pauseQueue("slow");
  await waitFor(async () => (await count("status = 'running'")) <= 1, "held jobs to go back to pending", 5000);
  await waitFor(async () => (await finished("true")) === 1, "the running job to finish", 5000);
  await pause(2000);
  expect(await finished("true")).toBe(1);
  expect(await count("status = 'pending'")).toBe(7);
});

it("a quieted worker claims nothing until resumed; a drained one finishes its running jobs and exits 0, none lost", async () => {
  // No jobs claimed ahead: exactly three run, three wait (held jobs going back are the pause test's).
  const w = workers.start("--worker-id", "w1", "--max-concurrent-jobs", "3", "--heartbeat-interval", "5", "--prefetch", "0");
  await workers.registered(1);
  const quieted = await ctx.jobManager.quietWorker("w1");
  expect(quieted.requestedState).toBe("quiet");
  await waitFor(async () => (await ctx.jobManager.listWorkers())[0]?.status === "quiet", "the worker to report quiet", 2000);
  await ctx.jobManager.createJobs(Array.from({ length: 5 }, (_, i) => job(`q${i}`, "default")));
  await pause(1500);
  expect(await finished("true")).toBe(0);
  expect((await ctx.jobManager.explain("q0"))?.summary).toMatch(/quiet or draining/);
  await ctx.jobManager.resumeWorker("w1");
  await waitFor(async () => (await finished("true")) === 5, "the resumed worker to run them", 5000);

  await ctx.jobManager.createJobs(Array.from({ length: 6 }, (_, i) => ({ ...job(`long${i}`, "default"), payload: { agent_name: "sleepy", parameters: { ms: 5000 } } })));
  await waitFor(async () => (await count("status = 'running'")) === 3, "three long jobs to run");
  await ctx.jobManager.drainWorker("w1");
  await waitFor(async () => (await ctx.jobManager.listWorkers())[0]?.status === "draining", "the worker to report draining", 2000);
  const exit = await w.exited;
  expect(exit.code).toBe(0);
  expect(await finished("status = 'completed' AND job_id LIKE 'long%'")).toBe(3);
  expect(await count("status = 'pending' AND lease_token IS NULL")).toBe(3);
  expect((await ctx.jobManager.listWorkers()).length).toBe(0);
  await expect(ctx.jobManager.quietWorker("w1")).rejects.toThrow(/no running worker has id "w1"/);
});

it("a worker restricted to tenants never runs another tenant's job; explain says when no worker serves a job's tenant", async () => {
  workers.start("--worker-id", "only-a", "--tenants", "orgA");
  workers.start("--worker-id", "only-b", "--tenants", "orgB,orgC");
  await workers.registered(2);
  await ctx.jobManager.createJobs([
    ...Array.from({ length: 20 }, (_, i) => job(`a${i}`, "default", { tenant: "orgA" })),
    ...Array.from({ length: 20 }, (_, i) => job(`b${i}`, "default", { tenant: "orgB" })),
    job("none", "default"),
    job("d", "default", { tenant: "orgD" }),
  ]);
  await waitFor(async () => (await finished("true")) === 40, "both tenants' jobs to run");
  const { rows } = await ctx.pool.query<{ tenant: string; worker: string }>("SELECT DISTINCT tenant, locked_by AS worker FROM job_history ORDER BY 1");
  expect(rows).toEqual([
    { tenant: "orgA", worker: "only-a" },
    { tenant: "orgB", worker: "only-b" },
  ]);
  await pause(1000);
  expect(await count("status = 'pending'")).toBe(2);
  expect((await ctx.jobManager.explain("d"))?.summary).toMatch(/no live worker serves tenant "orgD"/);
  expect((await ctx.jobManager.listWorkers()).map((w) => w.tenants).sort()).toEqual([["orgA"], ["orgB", "orgC"]]);
});

it("changes a running worker's jobs at once without restarting it", async () => {
  workers.start("--worker-id", "w1", "--max-concurrent-jobs", "4", "--prefetch", "0");
  await workers.registered(1);
  await ctx.jobManager.setWorkerConcurrency("w1", 1);
  await waitFor(async () => (await ctx.jobManager.listWorkers())[0]?.concurrency === 1, "the worker to report 1 slot", 2000);
  await ctx.jobManager.createJobs(Array.from({ length: 6 }, (_, i) => ({ ...job(`c${i}`, "default"), payload: { agent_name: "sleepy", parameters: { ms: 700 } } })));
  // How many ran at once, from the agents' own start/end records (the jobs table also counts a
  // finished job whose completion is still being written).
  const mostAtOnce = (from: number, to: number) => {
    const events = workers
      .log()
      .sort((a, b) => a.at - b.at || (a.event === "end" ? -1 : 1));
    let now = 0;
    let most = 0;
    for (const e of events) {
      now += e.event === "start" ? 1 : -1;
      if (e.at >= from && e.at < to) most = Math.max(most, now);
    }
    return most;
  };
  const t0 = Date.now();
  await pause(1500);
  const t1 = Date.now();
  expect(mostAtOnce(t0, t1)).toBe(1);
  await ctx.jobManager.setWorkerConcurrency("w1", 3);
  await waitFor(async () => workers.log().filter((e) => e.event === "end").length === 6, "the six jobs to run", 10_000);
  expect(mostAtOnce(t1, Date.now() + 1)).toBe(3);
  await expect(ctx.jobManager.setWorkerConcurrency("w1", 0)).rejects.toMatchObject({ field: "maxConcurrentJobs" });
});
