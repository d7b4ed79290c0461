import { randomBytes } from "node:crypto";
import { readStatus } from "../db/sql/status";
import { JobType, type CreateJobInput, type Job, type JsonValue } from "../core/types";
import type { JobManager } from "../jobs/JobManager";
import { createLogger } from "../core/logger";
import { Worker } from "../worker/Worker";
import type { AgentRegistry, QueryEngine } from "../worker/types";
import type { WorkerOptions } from "../worker/options";
import type { Logger } from "../core/logger";
import type { CliConfig } from "./config";
import { openDatabase } from "./database";
import { formatStatus, json, table } from "./format";

/**
 * The demo graph: a planner fans out to three fetchers, which fan in to a
 * merge; a query job analyses the merge and a reporter writes it up. Beside
 * it, a flaky job fails once and succeeds on retry, a doomed job fails for
 * good so that its dependents are cancelled, and a researcher delegates one
 * child job per topic from inside its run and gathers their results.
 */
function demoGraph(run: string): CreateJobInput[] {
  const id = (name: string) => `demo-${run}-${name}`;
  const agent = (name: string, agentName: string, parameters: JsonValue, dependencies: string[] = [], extra: Partial<CreateJobInput> = {}): CreateJobInput => ({
    id: id(name),
    jobType: JobType.AGENT,
    name,
    payload: { agent_name: agentName, parameters },
    dependencies: dependencies.map(id),
    ...extra,
  });
  return [
    agent("plan", "planner", { sources: ["alpha", "beta", "gamma"] }),
    agent("fetch-alpha", "fetcher", { source: "alpha" }, ["plan"]),
    agent("fetch-beta", "fetcher", { source: "beta" }, ["plan"]),
    agent("fetch-gamma", "fetcher", { source: "gamma" }, ["plan"]),
    agent("merge", "merger", {}, ["fetch-alpha", "fetch-beta", "fetch-gamma"]),
    {
      id: id("analyze"),
      jobType: JobType.QUERY,
      name: "analyze",
      payload: { query: "Which source has the most rows?", inferred_goal_output: "a one-line answer" },
      dependencies: [id("merge")],
    },
    agent("report", "reporter", {}, ["analyze", "flaky"]),
    agent("flaky", "flaky", { failFirst: true }, ["plan"], { maxRetries: 2 }),
    agent("doomed", "doomed", {}, [], { maxRetries: 1 }),
    agent("doomed-followup", "reporter", {}, ["doomed"]),
    agent("doomed-report", "reporter", {}, ["doomed-followup"]),
    agent("research", "researcher", { topics: ["pricing", "churn"] }, ["plan"]),
  ];
}

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

/** Agents of the demo: small, deterministic, each taking a moment so progress is visible. */
function demoAgents(): AgentRegistry {
  const attempts = new Map<string, number>();
  return {
    planner: async (params, ctx) => {
      await pause(150, ctx.signal);
      return { plan: (params as { sources: string[] }).sources };
    },
    fetcher: async (params, ctx) => {
      const source = (params as { source: string }).source;
      ctx.log.info(`fetching ${source}`);
      await pause(200 + source.length * 40, ctx.signal);
      ctx.log.info(`fetched ${source}`, { rows: source.length * 100 });
      return { source, rows: source.length * 100 };
    },
    merger: async (_params, ctx) => {
      const parts = Object.values(ctx.dependencyResults) as Array<{ source: string; rows: number }>;
      return { sources: parts.length, rows: parts.reduce((sum, p) => sum + p.rows, 0), bySource: Object.fromEntries(parts.map((p) => [p.source, p.rows])) };
    },
    reporter: async (_params, ctx) => ({ report: `based on ${Object.keys(ctx.dependencyResults).length} input(s)`, inputs: ctx.dependencyResults }),
    flaky: async (_params, ctx) => {
      const n = (attempts.get(ctx.job.id) ?? 0) + 1;
      attempts.set(ctx.job.id, n);
      if (n === 1) throw new Error("transient failure on the first attempt");
      return { succeededOnAttempt: n };
    },
    doomed: async () => {
      throw new Error("this job always fails");
    },
    // Delegates one child per topic and waits for all (the children run in this job's slot if no other is free).
    researcher: async (params, ctx) => {
      const topics = (params as { topics: string[] }).topics;
      const summaries = await ctx.delegateAll(
        topics.map((topic) => ({ jobType: JobType.AGENT, name: `summarise ${topic}`, payload: { agent_name: "summariser", parameters: { topic } } })),
        { wait: true, timeoutSeconds: 60 },
      );
      return { topics, summaries };
    },
    summariser: async (params, ctx) => {
      await pause(120, ctx.signal);
      return `${(params as { topic: string }).topic}: looks fine`;
    },
    heartbeat: async () => ({ at: new Date().toISOString() }),
  };
}

/** Starts a worker for the durable part of the demo. */
function startDurableWorker(prisma: WorkerOptions["prisma"], logger: Logger) {
  return async (agents: AgentRegistry): Promise<Worker> => {
    const worker = new Worker({ prisma, agentRegistry: agents, maxConcurrentJobs: 2, pollInterval: 0.2, logger, maintenance: false });
    await worker.start();
    return worker;
  };
}

const demoQueryEngine: QueryEngine = async ({ query }, ctx) => {
  const merged = Object.values(ctx.dependencyResults)[0] as { bySource?: Record<string, number> } | null;
  const best = Object.entries(merged?.bySource ?? {}).sort((a, b) => b[1] - a[1])[0];
  return { question: query ?? null, answer: best ? `${best[0]} has the most rows (${best[1]})` : "no data" };
};

/** Prints a progress line until every demo job and the schedule's latest heartbeat have finished. */
async function showProgress(jobManager: JobManager, ids: string[], scheduleName: string, tty: boolean, say: (line: string) => void): Promise<void> {
  let last = "";
  for (;;) {
    const jobs = await Promise.all(ids.map((id) => jobManager.getJob(id)));
    const count = (status: string) => jobs.filter((j) => j?.status === status).length;
    const done = jobs.filter((j) => j?.archived).length;
    const line = `progress: ${done}/${ids.length} finished | ${count("completed")} completed, ${count("failed")} failed, ${count("cancelled")} cancelled, ${count("running")} running, ${count("pending")} pending`;
    if (line !== last) {
      if (tty) process.stdout.write(`\r${line}`);
      else say(line);
      last = line;
    }
    const schedule = (await jobManager.listSchedules()).find((s) => s.name === scheduleName);
    const heartbeat = schedule?.lastJobId ? await jobManager.getJob(schedule.lastJobId) : null;
    if (done === ids.length && heartbeat?.archived) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (tty) process.stdout.write("\n");
}

/** The table of demo jobs, and what delegation, the schedule and the job log did. */
async function printSummary(jobManager: JobManager, ids: string[], lastTick: Date | null, scheduleName: string, say: (line: string) => void): Promise<void> {
  const jobs = await Promise.all(ids.map(async (id) => (await jobManager.getJob(id)) as Job));
  say("");
  say("Jobs:");
  say(table(["name", "status", "attempts", "result or error"], jobs.map((j) => [j.name, j.status, String(j.attempts), (j.errorMessage ?? JSON.stringify(j.result)).slice(0, 70)])));
  const research = jobs.find((j) => j.name === "research");
  const fetchLog = await jobManager.getJobLogs(jobs.find((j) => j.name === "fetch-alpha")?.id as string);
  say("");
  say(`Delegation: "research" created ${research?.childIds?.length ?? 0} child jobs (${(research?.childIds ?? []).join(", ")}) and gathered their results.`);
  say(`Schedule: ${scheduleName} fired every second (last tick ${lastTick?.toISOString() ?? "-"}); deleted at the end.`);
  say(`Job log of fetch-alpha (skein logs <id>): ${fetchLog.map((l) => l.message).join(" | ")}`);
  say("");
}

/** Runs of each durable step of the demo's "ingest" job, and a signal for the moment to crash its worker. */
interface DurableRuns {
  counts: Record<string, number>;
  inTransform: Promise<void>;
}

/**
 * The demo's durable job: three steps (download, transform, upload). The
 * first time "transform" runs, it tells the demo, which stops the worker
 * abruptly right there (as a crash would) and starts another.
 */
function durableAgents(): { agents: AgentRegistry; runs: DurableRuns } {
  let crashNow!: () => void;
  const runs: DurableRuns = { counts: {}, inTransform: new Promise((resolve) => (crashNow = resolve)) };
  const counted = async <T>(name: string, ctx: Parameters<AgentRegistry[string]>[1], fn: () => Promise<T>) =>
    ctx.step(name, async () => {
      runs.counts[name] = (runs.counts[name] ?? 0) + 1;
      return fn();
    });
  const agents: AgentRegistry = {
    ingest: async (_params, ctx) => {
      const downloaded = await counted("download", ctx, async () => (await pause(150, ctx.signal), { rows: 1200 }));
      const transformed = await counted("transform", ctx, async () => {
        if (runs.counts.transform === 1) {
          crashNow();
          await pause(60_000, ctx.signal);
          throw new Error("interrupted");
        }
        return { rows: downloaded.rows, cleaned: downloaded.rows - 17 };
      });
      return counted("upload", ctx, async () => ({ uploaded: transformed.cleaned }));
    },
  };
  return { agents, runs };
}

/**
 * Durable steps surviving a crash: the "ingest" job's worker is stopped
 * abruptly in the middle of its second step, and a new worker finishes it
 * without running the first step again.
 */
async function durableDemo(jobManager: JobManager, start: (agents: AgentRegistry) => Promise<Worker>, run: string, say: (line: string) => void): Promise<void> {
  const { agents, runs } = durableAgents();
  const first = await start(agents);
  const job = await jobManager.createJob({ id: `demo-${run}-ingest`, jobType: JobType.AGENT, name: "ingest", payload: { agent_name: "ingest" } });
  await runs.inTransform;
  await first.stop({ force: true });
  const second = await start(agents);
  try {
    let done = await jobManager.getJob(job.id);
    while (!done?.archived) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      done = await jobManager.getJob(job.id);
    }
    const steps = (await jobManager.getJobSteps(job.id)) ?? [];
    say(`Durable steps: "ingest" (${done.status}, ${JSON.stringify(done.result)}) lost its worker in the middle of "transform" (a forced stop standing in for a crash; tests/durable-crash.test.ts uses kill -9);`);
    say(`  a new worker resumed it: ${["download", "transform", "upload"].map((s) => `${s} ran ${runs.counts[s] ?? 0}x`).join(", ")}; stored steps: ${steps.map((s) => `${s.name} (attempt ${s.attempt})`).join(", ")} (skein steps ${job.id}).`);
  } finally {
    await second.stop({ force: true });
  }
}

/** Runs the demo: embedded database (unless a URL is configured), a worker, the graph, a live progress line, the status summary. */
export async function runDemo(config: CliConfig, output: { json: boolean; tty: boolean }): Promise<void> {
  // Failures are part of the show; the table reports them, so keep the log to real errors.
  const logger = createLogger({ level: config.logLevel === "info" ? "error" : config.logLevel, format: config.logFormat });
  const say = (line: string) => process.stdout.write(line + "\n");
  say(config.databaseUrl ? "Using the configured database." : `Starting the embedded PostgreSQL (data in ${config.dataDir}) ...`);
  const db = await openDatabase(config, logger, { migrate: true, maxConnections: 8 });
  const worker = new Worker({
    prisma: db.prisma,
    agentRegistry: demoAgents(),
    queryEngine: demoQueryEngine,
    maxConcurrentJobs: 4,
    pollInterval: 1,
    retryBackoff: { baseSeconds: 0.5, maxSeconds: 2 },
    logger,
  });
  try {
    await worker.start();
    const run = randomBytes(3).toString("hex");
    const graph = demoGraph(run);
    await db.jobManager.createJobs(graph);
    say(`Created ${graph.length} jobs (run ${run}): fan-out, fan-in, an agent job, a query job, a flaky job, a failing one and a delegating one.`);
    const scheduleName = `demo-heartbeat-${run}`;
    await db.jobManager.createSchedule({ name: scheduleName, intervalSeconds: 1, jobTemplate: { jobType: JobType.AGENT, name: "heartbeat", payload: { agent_name: "heartbeat" } } });
    say(`Created schedule ${scheduleName}: a heartbeat job every second while the demo runs.`);
    const ids = graph.map((g) => g.id as string);
    await showProgress(db.jobManager, ids, scheduleName, output.tty, say);
    if (output.tty) process.stdout.write("\n");
    const ticks = await db.jobManager.listSchedules();
    await db.jobManager.deleteSchedule(scheduleName);
    await worker.stop();
    await printSummary(db.jobManager, ids, ticks.find((s) => s.name === scheduleName)?.lastRunAt ?? null, scheduleName, say);
    await durableDemo(db.jobManager, startDurableWorker(db.prisma, logger), run, say);
    say("");
    const snapshot = await readStatus(db.db);
    say(output.json ? json(snapshot) : formatStatus(snapshot, 60));
  } finally {
    await worker.stop({ force: true });
    await db.close();
  }
}
