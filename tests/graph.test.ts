import { JobStatus, Worker, type DependencySpec } from "../src";
import { databaseFor } from "../src/db/database";
import { graphAround } from "../src/db/sql/graph";
import { truncateAll, useTestDatabase } from "./helpers/db";
import { TestDriver } from "./helpers/store";
import { deferred, waitFor } from "./helpers/wait";

const ctx = useTestDatabase();
let driver: TestDriver;
beforeAll(() => {
  driver = new TestDriver(ctx.prisma);
});
beforeEach(() => truncateAll(ctx.pool));

const job = (id: string, dependencies: DependencySpec[] = []) => ({ id, jobType: "agent" as const, name: id, dependencies, maxRetries: 0 });
const status = async (id: string) => (await ctx.jobManager.getJob(id))?.status;
const readyIds = async () => (await ctx.jobManager.getReadyJobs({ limit: 1000 })).map((j) => j.id).sort();

describe("failure policies per dependency edge", () => {
  it("ignore: the dependent runs once the dependency has finished, and sees its failure", async () => {
    await ctx.jobManager.createJobs([job("a"), job("b"), job("c", ["a", { id: "b", onFailure: "ignore" }])]);
    expect((await ctx.jobManager.getJob("c"))?.dependencies).toEqual(["a", { id: "b", onFailure: "ignore" }]);
    await driver.failFinally("b", "b broke");
    expect(await status("c")).toBe("pending");
    expect(await readyIds()).toEqual(["a"]);
    await driver.complete("a");
    expect(await readyIds()).toEqual(["c"]);
    // The worker hands the failure to the executor.
    let seen: unknown;
    const worker = new Worker({ prisma: ctx.prisma, pollInterval: 0.2 });
    worker.addExecutor({ canExecute: () => true, execute: async (_job, c) => (seen = c.dependencyResults) });
    await worker.start();
    await waitFor(async () => (await status("c")) === "completed", "c to run");
    await worker.stop();
    expect(seen).toEqual({ a: { ok: "a" }, b: { status: "failed", error: "b broke" } });
  });

  it("fail: the dependent fails instead of being cancelled, and its own dependents follow their edges", async () => {
    await ctx.jobManager.createJobs([job("a"), job("b", [{ id: "a", onFailure: "fail" }]), job("c", ["b"]), job("d", [{ id: "b", onFailure: "ignore" }])]);
    await driver.failFinally("a");
    expect(await ctx.jobManager.getJob("b")).toMatchObject({ status: "failed", errorMessage: 'failed because job "a" failed' });
    expect(await ctx.jobManager.getJob("c")).toMatchObject({ status: "cancelled", errorMessage: 'cancelled because job "a" failed' });
    expect(await readyIds()).toEqual(["d"]);
  });

  it("applies transitively on a diamond: fail wins over cancel where paths meet; ignore lets the sink run", async () => {
    //      root
    //     /    \
    //  left    right        left --cancel--> root, right --fail--> root
    //     \    /
    //      sink             sink --cancel--> left, sink --fail--> right  => failed
    //       |
    //      tail             tail --ignore--> sink => runs
    await ctx.jobManager.createJobs([
      job("root"),
      job("left", ["root"]),
      job("right", [{ id: "root", onFailure: "fail" }]),
      job("sink", ["left", { id: "right", onFailure: "fail" }]),
      job("tail", [{ id: "sink", onFailure: "ignore" }]),
    ]);
    await driver.failFinally("root");
    expect(await status("left")).toBe("cancelled");
    expect(await status("right")).toBe("failed");
    expect(await status("sink")).toBe("failed");
    expect(await readyIds()).toEqual(["tail"]);
  });

  it("a diamond whose both sides ignore the failure runs the sink once both have finished", async () => {
    await ctx.jobManager.createJobs([
      job("root"),
      job("left", [{ id: "root", onFailure: "ignore" }]),
      job("right", [{ id: "root", onFailure: "ignore" }]),
      job("sink", ["left", "right"]),
    ]);
    await driver.failFinally("root");
    expect(await readyIds()).toEqual(["left", "right"]);
    await driver.complete("left");
    expect(await readyIds()).toEqual(["right"]);
    await driver.complete("right");
    expect(await readyIds()).toEqual(["sink"]);
  });

  it("a new job depending on an archived failure follows its edge's policy", async () => {
    await ctx.jobManager.createJob(job("gone"));
    await driver.failFinally("gone");
    const [ignoring, failing, cancelling] = await ctx.jobManager.createJobs([
      job("ignoring", [{ id: "gone", onFailure: "ignore" }]),
      job("failing", [{ id: "gone", onFailure: "fail" }]),
      job("cancelling", ["gone"]),
    ]);
    expect(ignoring).toMatchObject({ status: "pending", pendingDependencies: 0 });
    expect(failing).toMatchObject({ status: "failed", errorMessage: 'failed because job "gone" failed' });
    expect(cancelling).toMatchObject({ status: "cancelled" });
  });

  it("rejects bad policies and conflicting duplicates, naming the field", async () => {
    await ctx.jobManager.createJob(job("a"));
    await expect(ctx.jobManager.createJob(job("x", [{ id: "a", onFailure: "explode" as never }]))).rejects.toMatchObject({ field: "dependencies[0].onFailure" });
    await expect(ctx.jobManager.createJob(job("x", ["a", { id: "a", onFailure: "ignore" }]))).rejects.toMatchObject({ field: "dependencies[1]" });
    await expect(ctx.jobManager.createJob(job("x", [{ id: "a", when: "now" } as never]))).rejects.toMatchObject({ field: "dependencies[0].when" });
    expect(await ctx.jobManager.getJob("x")).toBeNull();
  });
});

describe("graph operations", () => {
  it("cancelJob with cascade cancels everything downstream, ignoring edges, and aborts a running job at once", async () => {
    const started = deferred();
    let aborted = false;
    const worker = new Worker({ prisma: ctx.prisma, pollInterval: 0.2, heartbeatInterval: 30, staleTimeout: 60 });
    worker.addExecutor({
      canExecute: () => true,
      execute: (_job, c) =>
        new Promise((_resolve, reject) => {
          started.resolve();
          c.signal.addEventListener("abort", () => {
            aborted = true;
            reject(new Error("aborted"));
          });
        }),
    });
    await ctx.jobManager.createJobs([job("top"), job("runner", [{ id: "top", onFailure: "ignore" }]), job("below", ["runner"]), job("side", [{ id: "top", onFailure: "ignore" }])]);
    await driver.complete("top");
    await ctx.pool.query("UPDATE jobs SET run_at = now() + interval '1 hour' WHERE id = 'side'");
    await worker.start();
    await started.promise;
    await ctx.jobManager.cancelJob("runner", { cascade: true });
    await waitFor(async () => aborted, "the running attempt to be aborted (heartbeat is 30 s away)", 5000);
    await worker.stop();
    expect(await status("runner")).toBe("cancelled");
    expect(await status("below")).toBe("cancelled");
    expect(await status("side")).toBe("pending");
  });

  it("retryJob downstream restores the cancelled descendants to pending, keeping the edges", async () => {
    await ctx.jobManager.createJobs([job("a"), job("other"), job("b", ["a"]), job("c", ["b", "other"]), job("d", ["c"])]);
    await driver.failFinally("a");
    await driver.failFinally("other");
    expect(await status("d")).toBe("cancelled");
    // c also depends on "other", which failed too: c (and d below it) stay cancelled until "other" is retried.
    const retried = await ctx.jobManager.retryJob("a", { downstream: true });
    expect(retried).toMatchObject({ id: "a", status: "pending", retryCount: 0 });
    expect(await ctx.jobManager.getJob("b")).toMatchObject({ status: "pending", pendingDependencies: 1 });
    expect(await status("c")).toBe("cancelled");
    await ctx.jobManager.retryJob("other", { downstream: true });
    expect(await ctx.jobManager.getJob("c")).toMatchObject({ status: "pending", pendingDependencies: 2 });
    expect(await ctx.jobManager.getJob("d")).toMatchObject({ status: "pending", pendingDependencies: 1 });
    for (const id of ["a", "other", "b", "c", "d"]) await driver.complete(id);
    expect(await status("d")).toBe("completed");
  });

  it("retryJob without downstream leaves the descendants cancelled", async () => {
    await ctx.jobManager.createJobs([job("a"), job("b", ["a"])]);
    await driver.failFinally("a");
    await ctx.jobManager.retryJob("a");
    expect(await status("a")).toBe("pending");
    expect(await status("b")).toBe("cancelled");
  });

  it("the dead-letter queue lists finally failed jobs and replays them with their dependents", async () => {
    await ctx.jobManager.createJobs([job("x"), job("y"), job("x-child", ["x"])]);
    const before = new Date(Date.now() - 1000);
    await driver.failFinally("x");
    await driver.failFinally("y");
    expect((await ctx.jobManager.listDeadLetters()).map((j) => j.id).sort()).toEqual(["x", "y"]);
    expect((await ctx.jobManager.listDeadLetters({ since: new Date(Date.now() + 60_000) })).map((j) => j.id)).toEqual([]);
    await expect(ctx.jobManager.replayDeadLetters({})).rejects.toMatchObject({ field: "replay" });
    const one = await ctx.jobManager.replayDeadLetters({ ids: ["x", "nope"] });
    expect(one).toMatchObject({ replayed: ["x"], restored: 2 });
    expect(one.skipped.map((s) => s.id)).toEqual(["nope"]);
    expect(await status("x-child")).toBe("pending");
    const rest = await ctx.jobManager.replayDeadLetters({ since: before });
    expect(rest.replayed).toEqual(["y"]);
    expect(await ctx.jobManager.listDeadLetters()).toEqual([]);
  });

  it("pruning history removes the pruned jobs' edges but never a live job's", async () => {
    await ctx.jobManager.createJobs([job("old"), job("live", ["old"]), job("old-child", ["old"])]);
    await driver.complete("old");
    await driver.complete("old-child");
    await ctx.pool.query("UPDATE job_history SET completed_at = now() - interval '40 days'");
    expect(await ctx.jobManager.cleanupOldHistory(30)).toBe(2);
    const { rows } = await ctx.pool.query("SELECT job_id, depends_on_id FROM job_dependencies ORDER BY job_id");
    expect(rows).toEqual([{ job_id: "live", depends_on_id: "old" }]);
    expect(await readyIds()).toEqual(["live"]);
    expect((await ctx.jobManager.getJob("live"))?.status).toBe(JobStatus.PENDING);
  });
});

describe("the graph around a job", () => {
  it("cut at its limit, it holds the job and the jobs nearest to it", async () => {
    const far = Array.from({ length: 20 }, (_, i) => ({ id: `far${i}`, jobType: "agent" as const, name: `far ${i}` }));
    await ctx.jobManager.createJobs([
      ...far,
      { id: "near", jobType: "agent", name: "near", dependencies: far.map((f) => f.id) },
      { id: "mid", jobType: "agent", name: "mid", dependencies: ["near"] },
      { id: "below", jobType: "agent", name: "below", dependencies: ["mid"] },
    ]);
    const graph = await graphAround(databaseFor(ctx.prisma), "mid", null, 3);
    expect(graph.nodes.map((n) => n.id).sort()).toEqual(["below", "mid", "near"]);
    expect(graph.edges).toEqual(expect.arrayContaining([{ from: "near", to: "mid", onFailure: "cancel" }, { from: "mid", to: "below", onFailure: "cancel" }]));
  });
});
