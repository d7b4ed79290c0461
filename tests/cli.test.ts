import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { truncateAll, useTestDatabase, createTestDatabase } from "./helpers/db";
import { Worker } from "../src";
import { runCli } from "./helpers/processes";
import { waitFor } from "./helpers/wait";
import { TestDriver } from "./helpers/store";

const ctx = useTestDatabase();
beforeEach(() => truncateAll(ctx.pool));

const skein = (...args: string[]) => runCli("skein", [...args, "--database-url", ctx.db.url]);

describe("skein command", () => {
  it("creates, shows, lists, cancels, retries and cleans up jobs, with --json", async () => {
    const created = await skein("create-job", "--type", "agent", "--name", "load", "--id", "cli-1", "--payload", '{"agent_name":"loader"}', "--json");
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ id: "cli-1", status: "pending", payload: { agent_name: "loader" } });
    const child = await skein("create-job", "--type", "query", "--name", "q", "--id", "cli-2", "--depends-on", "cli-1", "--max-retries", "1");
    expect(child.stdout).toMatch(/created job cli-2/);

    const shown = await skein("show", "cli-2", "--json");
    expect(JSON.parse(shown.stdout)).toMatchObject({ id: "cli-2", dependencies: ["cli-1"], pendingDependencies: 1, maxRetries: 1 });
    expect((await skein("show", "cli-2")).stdout).toMatch(/waiting on\s+1/);

    const listed = JSON.parse((await skein("list", "--json")).stdout) as Array<{ id: string }>;
    expect(listed.map((j) => j.id).sort()).toEqual(["cli-1", "cli-2"]);

    expect((await skein("cancel", "cli-1")).code).toBe(0);
    const history = JSON.parse((await skein("history", "--status", "cancelled", "--json")).stdout) as Array<{ id: string; errorMessage: string }>;
    expect(history.map((j) => j.id).sort()).toEqual(["cli-1", "cli-2"]);

    const retried = await skein("retry", "cli-1", "--json");
    expect(JSON.parse(retried.stdout)).toMatchObject({ id: "cli-1", status: "pending" });

    await ctx.pool.query("UPDATE job_history SET completed_at = now() - interval '10 days'");
    const cleaned = await skein("cleanup", "--days", "5", "--json");
    expect(JSON.parse(cleaned.stdout)).toEqual({ deleted: 1 });
  });

  it.each([
    [["create-job", "--type", "shell", "--name", "x"], /type/],
    [["create-job", "--type", "agent"], /name/],
    [["create-job", "--type", "agent", "--name", "x", "--payload", "{not json"], /invalid --payload/],
    [["create-job", "--type", "agent", "--name", "x", "--max-retries", "-1"], /max-retries/],
    [["list", "--limit", "zero"], /limit/],
    [["frobnicate"], /Unknown argument|command/],
    [["cleanup"], /days/],
  ])("rejects bad input %j with one line and exit code 2", async (args, message) => {
    const result = await skein(...args);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(message);
  });

  it("reports a refused operation in one line with exit code 1", async () => {
    const result = await skein("cancel", "no-such-job");
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe('error: job "no-such-job" not found');
    const cycle = await skein("create-job", "--type", "agent", "--name", "x", "--depends-on", "ghost");
    expect(cycle.code).toBe(1);
    expect(cycle.stderr).toMatch(/unknown dependency id: "ghost"/);
  });

  it("says clearly when the database cannot be reached", async () => {
    const result = await runCli("skein", ["list", "--database-url", "postgresql://user:secret@127.0.0.1:1/nothing"]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(/^error: cannot reach the database at postgresql:\/\/user:\*\*\*@127\.0\.0\.1:1\/nothing: .*ECONNREFUSED/);
    expect(result.stderr).not.toMatch(/secret/);
  });
});

describe("flow control from the command line", () => {
  beforeEach(() => ctx.pool.query("TRUNCATE rate_limits, concurrency_limits, tasks"));

  it("sets and lists rate limits, creates a task of no-op jobs, shows its progress and explains a job", async () => {
    const limits = await skein("rate-limits", "openai=120/s", "gemini=60/m:5", "--json");
    expect(limits.code).toBe(0);
    expect(JSON.parse(limits.stdout)).toEqual([
      expect.objectContaining({ key: "gemini", perSecond: 1, burst: 5 }),
      expect.objectContaining({ key: "openai", perSecond: 120, burst: 12 }),
    ]);
    expect((await skein("rate-limits", "--remove", "gemini")).stdout).not.toMatch(/gemini/);

    const created = await skein("create-task", "--tenant", "orgA", "--jobs", "25", "--provider", "openai", "--json");
    expect(created.code).toBe(0);
    const task = JSON.parse(created.stdout) as { id: string; totalJobs: number; tenant: string };
    expect(task).toMatchObject({ totalJobs: 25, tenant: "orgA" });
    const shown = await skein("task", task.id);
    expect(shown.stdout).toMatch(/0% done/);
    expect(shown.stdout).toMatch(/25 jobs: 25 pending/);

    const { rows } = await ctx.pool.query<{ id: string }>("SELECT id FROM jobs WHERE task_id = $1 LIMIT 1", [task.id]);
    const job = await skein("show", rows[0].id, "--json");
    expect(JSON.parse(job.stdout)).toMatchObject({ tenant: "orgA", rateLimitKey: "openai", payload: { agent_name: "noop" } });
    const why = await skein("explain", rows[0].id);
    expect(why.code).toBe(0);
    expect(why.stdout).toMatch(/no live worker/);
  });

  it("creates a job with flow-control fields and rejects bad specs with exit code 2", async () => {
    const made = await skein("create-job", "--type", "agent", "--name", "x", "--queue", "emails", "--tenant", "orgB", "--concurrency-key", "c-1", "--tag", "gpu", "--json");
    expect(JSON.parse(made.stdout)).toMatchObject({ queue: "emails", tenant: "orgB", concurrencyKey: "c-1", tags: ["gpu"] });
    for (const args of [["rate-limits", "openai=fast"], ["create-task", "--tenant", "x", "--jobs", "0"]]) {
      const result = await skein(...args);
      expect(result.code).toBe(2);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
    }
    const bad = await runCli("run-worker", ["--rate-limit", "openai=120/h", "--database-url", ctx.db.url]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--rate-limit/);
  });
});

describe("workflow commands", () => {
  beforeEach(() => ctx.pool.query("TRUNCATE job_events, job_logs, schedules, schedule_ticks"));

  it("dlq list and replay, cancel --cascade, retry --downstream, events and logs", async () => {
    await ctx.jobManager.createJobs([
      { id: "w-a", jobType: "agent", name: "a", maxRetries: 0 },
      { id: "w-b", jobType: "agent", name: "b", dependencies: ["w-a"] },
    ]);
    const driver = new TestDriver(ctx.prisma);
    await driver.failFinally("w-a", "exploded");
    const listed = JSON.parse((await skein("dlq", "list", "--json")).stdout) as Array<{ id: string }>;
    expect(listed.map((j) => j.id)).toEqual(["w-a"]);
    const replay = await skein("dlq", "replay", "--id", "w-a");
    expect(replay.stdout).toMatch(/replayed 1 job\(s\), 2 restored to pending/);
    expect((await ctx.jobManager.getJob("w-b"))?.status).toBe("pending");
    expect((await skein("dlq", "replay")).code).toBe(2);

    expect((await skein("cancel", "w-a", "--cascade")).code).toBe(0);
    expect((await ctx.jobManager.getJob("w-b"))?.status).toBe("cancelled");
    expect((await skein("retry", "w-a", "--downstream")).code).toBe(0);
    expect((await ctx.jobManager.getJob("w-b"))?.status).toBe("pending");

    const events = await skein("events", "w-a");
    expect(events.code).toBe(0);
    expect(events.stdout).toMatch(/created/);
    expect(events.stdout).toMatch(/failed/);
    await ctx.pool.query(
      "INSERT INTO job_logs (job_id, attempt, at, level, message, fields) VALUES ('w-a', 1, now(), 'info', 'hello from the job', '{\"n\": 1}')",
    );
    const logs = await skein("logs", "w-a");
    expect(logs.stdout).toMatch(/info\s+hello from the job \{"n":1\}/);
    expect((await skein("logs", "nope")).code).toBe(2);
  });

  it("schedules create, list, pause, resume and delete", async () => {
    const created = await skein("schedules", "create", "--name", "nightly", "--cron", "0 3 * * *", "--timezone", "Europe/Paris", "--type", "agent", "--payload", '{"agent_name":"noop"}', "--json");
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ name: "nightly", cron: "0 3 * * *", timezone: "Europe/Paris", paused: false });
    expect((await skein("schedules", "list")).stdout).toMatch(/nightly\s+0 3 \* \* \*\s+Europe\/Paris\s+active/);
    expect((await skein("schedules", "pause", "nightly")).stdout).toMatch(/paused schedule nightly/);
    expect((await skein("schedules", "resume", "nightly")).stdout).toMatch(/resumed schedule nightly/);
    expect((await skein("schedules", "delete", "nightly")).stdout).toMatch(/deleted schedule nightly/);
    const bad = await skein("schedules", "create", "--name", "x", "--cron", "not cron", "--type", "agent");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/cron/);
  });
});

describe("provenance and steps from the command line", () => {
  beforeEach(() => ctx.pool.query("TRUNCATE job_events, job_steps, schedules, schedule_ticks"));

  it("list and history filter by name, schedule, parent and creation time; steps prints a job's stored steps", async () => {
    const t0 = new Date("2030-01-01T00:00:00Z");
    await ctx.jobManager.createSchedule({ name: "hourly", intervalSeconds: 3600, jobTemplate: { jobType: "agent", payload: { agent_name: "noop" } } }, { now: t0 });
    const [tick] = await ctx.jobManager.runDueSchedules({ now: new Date("2030-01-01T01:00:00Z") });
    const between = new Date();
    await ctx.jobManager.createJobs([{ id: "pa", jobType: "agent", name: "parent" }]);
    await ctx.jobManager.createJobs([{ id: "ch", jobType: "agent", name: "child" }], { parent: { id: "pa", tenant: null, taskId: null } });
    const ids = async (...args: string[]) => (JSON.parse((await skein(...args, "--json")).stdout) as Array<{ id: string }>).map((j) => j.id).sort();
    expect(await ids("list", "--schedule", "hourly")).toEqual([tick.jobId]);
    expect(await ids("list", "--parent", "pa")).toEqual(["ch"]);
    expect(await ids("list", "--name", "parent")).toEqual(["pa"]);
    expect(await ids("list", "--created-after", between.toISOString())).toEqual(["ch", "pa"]);
    expect(await ids("list", "--created-before", between.toISOString())).toEqual([tick.jobId]);
    expect((await skein("show", tick.jobId)).stdout).toMatch(/schedule\s+hourly \(tick 2030-01-01T01:00:00.000Z\)/);
    await ctx.jobManager.cancelJob(tick.jobId);
    expect(await ids("history", "--schedule", "hourly")).toEqual([tick.jobId]);
    const bad = await skein("list", "--created-after", "soon");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/createdAfter/);
    await ctx.pool.query("INSERT INTO job_steps (job_id, name, attempt, result) VALUES ('pa', 'fetch', 1, '{\"rows\": 3}')");
    expect((await skein("steps", "pa")).stdout).toMatch(/fetch\s+1\s+\{"rows":3\}/);
    expect((await skein("steps", "nope")).code).toBe(2);
  });
});

describe("the demo", () => {
  it("runs on its own embedded PostgreSQL, finishes the graph and prints the summary", async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "skein-demo-"));
    chmodSync(dataDir, 0o755);
    try {
      const result = await runCli("skein", ["demo", "--data-dir", dataDir]);
      expect(result.stderr).not.toMatch(/Error:/);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/progress: 12\/12 finished/);
      expect(result.stdout).toMatch(/flaky\s+completed\s+2/);
      expect(result.stdout).toMatch(/doomed-report\s+cancelled/);
      expect(result.stdout).toMatch(/Delegation: "research" created 2 child jobs/);
      expect(result.stdout).toMatch(/Schedule: demo-heartbeat-\w+ fired every second/);
      expect(result.stdout).toMatch(/Durable steps: "ingest" \(completed, \{"uploaded":1183\}\) lost its worker in the middle of "transform"/);
      expect(result.stdout).toMatch(/download ran 1x, transform ran 2x, upload ran 1x; stored steps: download \(attempt 1\), transform \(attempt 2\), upload \(attempt 2\)/);
      expect(result.stdout).toMatch(/Skein status at/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("operator controls from the command line", () => {
  beforeEach(() => ctx.pool.query("TRUNCATE workers, paused_queues"));

  it("skein queues list, pause and resume", async () => {
    await ctx.jobManager.createJobs([
      { id: "m1", jobType: "agent", name: "m1", queue: "mail" },
      { id: "m2", jobType: "agent", name: "m2", queue: "mail" },
      { id: "d1", jobType: "agent", name: "d1" },
    ]);
    const paused = await skein("queues", "pause", "mail");
    expect(paused.code).toBe(0);
    expect(paused.stdout).toMatch(/paused queue mail \(2 ready, 0 running\)/);
    const listed = await skein("queues", "list");
    expect(listed.stdout).toMatch(/mail\s+paused since \S+\s+2\s+0\s+0/);
    expect(listed.stdout).toMatch(/default\s+active\s+1\s+0\s+0/);
    const json = JSON.parse((await skein("queues", "list", "--json")).stdout) as Array<{ name: string; paused: boolean }>;
    expect(json.map((q) => [q.name, q.paused])).toEqual([["default", false], ["mail", true]]);
    expect((await skein("queues", "resume", "mail")).stdout).toMatch(/resumed queue mail \(2 ready\)/);
    expect((await ctx.jobManager.listQueues()).every((q) => !q.paused)).toBe(true);
    const bad = await skein("queues", "pause", "");
    expect(bad.code).toBe(2);
  });

  it("skein workers list, quiet, resume, drain and concurrency reach a running worker", async () => {
    const worker = new Worker({ prisma: ctx.prisma, workerId: "cli-w", maxConcurrentJobs: 2, tenants: ["orgA"], pollInterval: 0.2 });
    await worker.start();
    try {
      const listed = await skein("workers", "list");
      expect(listed.code).toBe(0);
      expect(listed.stdout).toMatch(/cli-w\s+running\s+0\s+2\s+all\s+orgA/);
      expect((await skein("workers", "quiet", "cli-w")).stdout).toMatch(/asked worker cli-w to go quiet/);
      await waitFor(async () => (await ctx.jobManager.listWorkers())[0]?.status === "quiet", "the worker to go quiet", 3000);
      expect((await skein("workers", "resume", "cli-w")).stdout).toMatch(/asked worker cli-w to resume/);
      await waitFor(async () => (await ctx.jobManager.listWorkers())[0]?.status === "running", "the worker to resume", 3000);
      expect((await skein("workers", "concurrency", "cli-w", "5")).stdout).toMatch(/asked worker cli-w to run 5 job\(s\) at once/);
      await waitFor(async () => (await ctx.jobManager.listWorkers())[0]?.concurrency === 5, "the worker to take 5 slots", 3000);
      const json = JSON.parse((await skein("workers", "list", "--json")).stdout) as Array<{ id: string; concurrency: number; tenants: string[] }>;
      expect(json).toMatchObject([{ id: "cli-w", concurrency: 5, tenants: ["orgA"] }]);
      expect((await skein("workers", "concurrency", "cli-w", "0")).code).toBe(2);
      const missing = await skein("workers", "quiet", "nobody");
      expect(missing.code).toBe(1);
      expect(missing.stderr.trim()).toMatch(/no running worker has id "nobody"/);
      const drained = await skein("workers", "drain", "cli-w");
      expect(drained.stderr).toBe("");
      expect(drained.stdout).toMatch(/asked worker cli-w to drain/);
      await waitFor(async () => (await ctx.jobManager.listWorkers()).length === 0, "the drained worker to stop and unregister", 5000);
    } finally {
      await worker.stop();
    }
  });
});

describe("run-worker --status and init-worker", () => {
  it("prints workers, counts, ready versus blocked, and why jobs wait; --json gives the same", async () => {
    await ctx.jobManager.createJobs([
      { id: "a", jobType: "agent", name: "a" },
      { id: "b", jobType: "agent", name: "b", dependencies: ["a"] },
      { id: "later", jobType: "agent", name: "later", runAt: new Date(Date.now() + 3600_000) },
    ]);
    const text = await runCli("run-worker", ["--status", "--database-url", ctx.db.url]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/3 pending \(1 ready, 1 blocked on dependencies, 1 scheduled later\)/);
    expect(text.stdout).toMatch(/waiting on 1 dependency: a/);
    const json = await runCli("run-worker", ["--status", "--json", "--database-url", ctx.db.url]);
    expect(json.code).toBe(0);
    const snapshot = JSON.parse(json.stdout);
    expect(snapshot.counts).toMatchObject({ pending: 3, running: 0 });
    expect(snapshot.pending).toEqual({ ready: 1, blockedOnDependencies: 1, scheduled: 1 });
  });

  it("rejects invalid run-worker flags with exit code 2", async () => {
    for (const args of [["--max-concurrent-jobs", "0"], ["--poll-interval", "soon"], ["--log-level", "loud"], ["--prefetch", "-1"], ["--prefetch", "2.5"], ["--no-such-flag"]]) {
      const result = await runCli("run-worker", [...args, "--database-url", ctx.db.url]);
      expect(result.code).toBe(2);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
    }
  });

  it("init-worker migrates a fresh database and is idempotent", async () => {
    const fresh = await createTestDatabase({ migrated: false });
    try {
      const first = await runCli("init-worker", ["--database-url", fresh.url, "--json"]);
      expect(first.code).toBe(0);
      expect(JSON.parse(first.stdout).applied.length).toBeGreaterThan(0);
      const again = await runCli("init-worker", ["--database-url", fresh.url]);
      expect(again.code).toBe(0);
      expect(again.stdout).toMatch(/up to date/);
    } finally {
      await fresh.drop();
    }
  });
});
