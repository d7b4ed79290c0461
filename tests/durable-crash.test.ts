import { truncateAll, useTestDatabase } from "./helpers/db";
import { useWorkerProcesses } from "./helpers/processes";
import { waitFor } from "./helpers/wait";

const ctx = useTestDatabase();
const workers = useWorkerProcesses(ctx);

beforeEach(async () => {
  await truncateAll(ctx.pool);
  await ctx.pool.query("TRUNCATE workers, job_steps, job_events");
});

it("kill -9 in the middle of a job that finished three of five steps and delegated two children: the next attempt runs only the rest", async () => {
  const a = workers.start("--stale-timeout", "2", "--heartbeat-interval", "0.5", "--worker-id", "worker-a");
  await workers.registered(1);
  await ctx.jobManager.createJob({ id: "wf", jobType: "agent", name: "workflow", payload: { agent_name: "workflow", parameters: { holdMs: 60_000 } }, maxRetries: 3 });
  const events = () => workers.log().map((e) => `${e.job === "wf" ? "" : "child:"}${e.event}`);
  await waitFor(async () => events().includes("step-4-start"), "the fourth step to start");
  await waitFor(async () => (await ctx.jobManager.getJobHistory({ parentId: "wf" })).length === 2, "both children to complete");
  a.child.kill("SIGKILL");
  await a.exited;
  workers.start("--stale-timeout", "2", "--heartbeat-interval", "0.5", "--worker-id", "worker-b");
  const done = await waitFor(async () => {
    const job = await ctx.jobManager.getJob("wf");
    return job?.archived ? job : undefined;
  }, "worker-b to finish the job", 30_000);
  expect(done).toMatchObject({ status: "completed", lockedBy: "worker-b", result: { results: [10, 20, 30, 40, 50] } });
  const log = workers.log().filter((e) => e.job === "wf");
  const count = (event: string) => log.filter((e) => e.event === event).length;
  // Steps 1-3 ran once (attempt 1); step 4 started twice (killed in attempt 1) and ended once; step 5 once.
  expect([1, 2, 3, 4, 5].map((n) => [count(`step-${n}-start`), count(`step-${n}-end`)])).toEqual([[1, 1], [1, 1], [1, 1], [2, 1], [1, 1]]);
  expect(log.filter((e) => e.event === "step-5-start").map((e) => e.attempt)).toEqual([2]);
  // The two children were made once and ran once: attempt 2 re-attached to them.
  const children = (await ctx.jobManager.getJobHistory({ parentId: "wf" })).map((c) => c.id).sort();
  expect(children).toHaveLength(2);
  expect([...(done.result as { children: string[] }).children].sort()).toEqual(children);
  expect(workers.log().filter((e) => children.includes(e.job) && e.event === "start")).toHaveLength(2);
  expect((await ctx.jobManager.getJobSteps("wf"))?.map((s) => [s.name, s.attempt])).toEqual([["step-1", 1], ["step-2", 1], ["step-3", 1], ["step-4", 2], ["step-5", 2]]);
});
