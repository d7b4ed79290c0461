import { truncateAll, useTestDatabase } from "./helpers/db";
import { useWorkerProcesses } from "./helpers/processes";
import { waitFor } from "./helpers/wait";

const ctx = useTestDatabase();
const workers = useWorkerProcesses(ctx);

beforeEach(async () => {
  await truncateAll(ctx.pool);
  await ctx.pool.query("DELETE FROM workers");
});

const jobRow = async (id: string) => (await ctx.jobManager.getJob(id))!;

it("4 worker processes drain 5,000 jobs: every job runs exactly once, none is lost", async () => {
  const jobs = Array.from({ length: 5000 }, (_, i) => ({
    id: `j${i}`,
    jobType: "agent" as const,
    name: `job ${i}`,
    payload: { agent_name: "record" },
    // some structure: every 10th job waits on the one before it
    dependencies: i % 10 === 9 ? [`j${i - 1}`] : [],
  }));
  await ctx.jobManager.createJobs(jobs);
  const started = Array.from({ length: 4 }, () => workers.start("--max-concurrent-jobs", "8"));
  await waitFor(async () => (await ctx.pool.query("SELECT count(*)::int AS n FROM job_history")).rows[0].n === 5000, "all 5,000 jobs to finish", 120_000);
  const { rows } = await ctx.pool.query("SELECT status, count(*)::int AS n, count(DISTINCT locked_by)::int AS workers FROM job_history GROUP BY status");
  expect(rows).toEqual([{ status: "completed", n: 5000, workers: 4 }]);
  const starts = workers.log().filter((e) => e.event === "start");
  expect(starts).toHaveLength(5000);
  expect(new Set(starts.map((e) => e.job)).size).toBe(5000);
  for (const p of started) p.child.kill("SIGTERM");
  const exits = await Promise.all(started.map((p) => p.exited));
  expect(exits.map((e) => e.code)).toEqual([0, 0, 0, 0]);
});

it("kill -9 of a worker mid-job: another worker finishes the job after the lease expires", async () => {
  const a = workers.start("--stale-timeout", "2", "--heartbeat-interval", "0.5", "--worker-id", "worker-a");
  await workers.registered(1);
  await ctx.jobManager.createJob({ id: "long", jobType: "agent", name: "long", payload: { agent_name: "sleepy", parameters: { ms: 60_000 } } });
  await waitFor(async () => (await jobRow("long")).lockedBy === "worker-a", "worker-a to start the job");
  a.child.kill("SIGKILL");
  await a.exited;
  workers.start("--stale-timeout", "2", "--heartbeat-interval", "0.5", "--worker-id", "worker-b");
  await ctx.pool.query("UPDATE jobs SET payload = jsonb_set(payload, '{parameters,ms}', '100') WHERE id = 'long'");
  const done = await waitFor(async () => {
    const job = await jobRow("long");
    return job.archived ? job : undefined;
  }, "worker-b to finish the job", 30_000);
  expect(done).toMatchObject({ status: "completed", result: { worker: "worker-b" }, attempts: 2, retryCount: 1 });
  expect(done.lockedBy).toBe("worker-b");
});

it("a paused worker (SIGSTOP) past its lease is refused when it resumes: the other run's result stands", async () => {
  const a = workers.start("--stale-timeout", "2", "--heartbeat-interval", "0.5", "--worker-id", "zombie");
  await workers.registered(1);
  await ctx.jobManager.createJob({ id: "contested", jobType: "agent", name: "c", payload: { agent_name: "sleepy", parameters: { ms: 1500 } } });
  // Wait for the executor itself to start (its sleep timer set), not only the claim: a
  // pause between claim and start would leave the attempt to be aborted by the
  // heartbeat's lease check on resume, before it could try to complete.
  await waitFor(async () => workers.log().some((e) => e.worker === "zombie" && e.event === "start"), "the zombie to start the job");
  expect((await jobRow("contested")).lockedBy).toBe("zombie");
  a.child.kill("SIGSTOP");
  workers.start("--stale-timeout", "2", "--heartbeat-interval", "0.5", "--worker-id", "healthy");
  const done = await waitFor(async () => {
    const job = await jobRow("contested");
    return job.archived ? job : undefined;
  }, "the healthy worker to finish the job", 30_000);
  expect(done.result).toMatchObject({ worker: "healthy" });
  a.child.kill("SIGCONT");
  // The zombie finishes its sleep and tries to complete: it must be refused.
  await waitFor(async () => workers.log().some((e) => e.worker === "zombie" && e.event === "end"), "the zombie to finish its attempt", 20_000);
  await waitFor(async () => /completion refused/.test(a.output()), "the zombie to log the refusal", 10_000);
  expect((await jobRow("contested")).result).toMatchObject({ worker: "healthy" });
  const { rows } = await ctx.pool.query("SELECT count(*)::int AS n FROM job_history WHERE job_id = 'contested'");
  expect(rows[0].n).toBe(1);
});

it("SIGTERM during a long job: the job finishes within the grace period and the process exits 0", async () => {
  const p = workers.start("--shutdown-timeout", "20");
  await workers.registered(1);
  await ctx.jobManager.createJob({ id: "graceful", jobType: "agent", name: "g", payload: { agent_name: "sleepy", parameters: { ms: 1500 } } });
  await waitFor(async () => (await jobRow("graceful")).status === "running", "the job to start");
  p.child.kill("SIGTERM");
  expect((await p.exited).code).toBe(0);
  expect(await jobRow("graceful")).toMatchObject({ status: "completed" });
  expect((await ctx.pool.query("SELECT count(*)::int AS n FROM workers")).rows[0].n).toBe(0);
});

it("SIGTERM with a job outlasting the grace period: it returns to pending without using a retry, exit 0", async () => {
  const p = workers.start("--shutdown-timeout", "1");
  await workers.registered(1);
  await ctx.jobManager.createJob({ id: "slow", jobType: "agent", name: "s", payload: { agent_name: "sleepy", parameters: { ms: 30_000 } } });
  await waitFor(async () => (await jobRow("slow")).status === "running", "the job to start");
  p.child.kill("SIGTERM");
  expect((await p.exited).code).toBe(0);
  expect(await jobRow("slow")).toMatchObject({ status: "pending", retryCount: 0, lockedBy: null });
});

it("a second signal forces the shutdown", async () => {
  const p = workers.start("--shutdown-timeout", "60");
  await workers.registered(1);
  await ctx.jobManager.createJob({ id: "stuck", jobType: "agent", name: "s", payload: { agent_name: "sleepy", parameters: { ms: 30_000 } } });
  await waitFor(async () => (await jobRow("stuck")).status === "running", "the job to start");
  p.child.kill("SIGTERM");
  await waitFor(async () => (await ctx.pool.query("SELECT status FROM workers")).rows[0]?.status === "stopping", "the worker to start stopping");
  p.child.kill("SIGINT");
  expect((await p.exited).code).toBe(0);
  expect(await jobRow("stuck")).toMatchObject({ status: "pending", retryCount: 0 });
});
