#!/usr/bin/env node
import { readFileSync } from "node:fs";
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import type { JobStatus } from "../core/types";
import { buildConfig, UsageError } from "./config";
import { common, print, withDatabase } from "./command";
import { workflowCommands } from "./workflow-commands";
import { serverCommands } from "./server-commands";
import { runDemo } from "./demo";
import { formatExplanation, formatJob, formatJobs, formatRateLimits, formatTask } from "./format";
import { parseRateLimitSpec } from "../limits";
import { NOOP_AGENT } from "../worker/executors";
import { failUsage, numberFlag, refuseEmptyNumbers, runCli } from "./main";
import { migrationScript } from "../db/migrations";
import { SkeinSchema } from "../db/schema";

function parsePayload(text: string | undefined): Record<string, never> | undefined {
  if (text === undefined) return undefined;
  const source = text.startsWith("@") ? readFileSync(text.slice(1), "utf8") : text;
  try {
    return JSON.parse(source) as Record<string, never>;
  } catch (error) {
    throw new UsageError(`invalid --payload: not JSON (${(error as Error).message})`);
  }
}

void runCli(async () => {
  refuseEmptyNumbers(hideBin(process.argv));
  await common(yargs(hideBin(process.argv)))
    .scriptName("skein")
    .usage("$0 <command> [options]\n\nCreates, inspects and steers Skein jobs.")
    .command(
      "create-job",
      "Create a job",
      (y) =>
        y.options({
          type: { type: "string", choices: ["agent", "query"], demandOption: true, describe: "Job type" },
          name: { type: "string", demandOption: true, describe: "Job name" },
          id: { type: "string", describe: "Job id (default: a UUID)" },
          description: { type: "string" },
          payload: { type: "string", describe: "Payload JSON, or @file.json" },
          "depends-on": { type: "string", array: true, describe: "Ids of jobs this one waits on" },
          "max-retries": { type: "number" },
          priority: { type: "number" },
          "run-at": { type: "string", describe: "ISO 8601 time to start at the earliest" },
          timeout: { type: "number", describe: "Seconds an attempt may run" },
          queue: { type: "string", describe: "Queue name (default: default)" },
          tenant: { type: "string", describe: "Tenant (organisation) the job belongs to" },
          "rate-limit-key": { type: "string", describe: "Rate-limit key, e.g. openai" },
          "rate-limit-cost": { type: "number", describe: "Tokens charged against the key (default 1)" },
          "concurrency-key": { type: "string", describe: "Concurrency key" },
          tag: { type: "string", array: true, describe: "Tags a worker must have to run it" },
        }),
      async (args) => {
        await withDatabase(args, async ({ jobManager }) => {
          const job = await jobManager.createJob({
            id: args.id,
            jobType: args.type as "agent" | "query",
            name: args.name,
            description: args.description,
            payload: parsePayload(args.payload),
            dependencies: args["depends-on"]?.map(String),
            maxRetries: numberFlag("max-retries", args["max-retries"], { integer: true, min: 0 }),
            priority: numberFlag("priority", args.priority, { integer: true, min: -2_147_483_647 }),
            runAt: args["run-at"],
            timeoutSeconds: numberFlag("timeout", args.timeout, { integer: true, positive: true }),
            queue: args.queue,
            tenant: args.tenant,
            rateLimitKey: args["rate-limit-key"],
            rateLimitCost: numberFlag("rate-limit-cost", args["rate-limit-cost"], { integer: true, positive: true }),
            concurrencyKey: args["concurrency-key"],
            tags: args.tag?.map(String),
          });
          print(args, job, `created job ${job.id} (${job.status})`);
        });
      },
    )
    .command(
      "show <id>",
      "Show a job (live or archived)",
      (y) => y.positional("id", { type: "string", demandOption: true }),
      async (args) => {
        await withDatabase(args, async ({ jobManager }) => {
          const job = await jobManager.getJob(String(args.id));
          if (!job) throw new UsageError(`job ${JSON.stringify(args.id)} not found`);
          print(args, job, formatJob(job));
        });
      },
    )
    .command(
      "list",
      "List live jobs (or archived ones with --status completed|failed|cancelled)",
      (y) => y.options({ status: { type: "string", choices: ["pending", "running", "completed", "failed", "cancelled"] }, limit: { type: "number", default: 50 } }),
      async (args) => {
        await withDatabase(args, async ({ jobManager }) => {
          const jobs = await jobManager.listJobs({ status: args.status as JobStatus | undefined, limit: numberFlag("limit", args.limit, { integer: true, positive: true }) });
          print(args, jobs, formatJobs(jobs));
        });
      },
    )
    .command(
      "cancel <id>",
      "Cancel a job (its dependents follow their edges' failure policies; --cascade cancels everything downstream)",
      (y) => y.positional("id", { type: "string", demandOption: true }).options({ cascade: { type: "boolean", default: false, describe: "Cancel everything downstream, running jobs included" } }),
      async (args) => {
        await withDatabase(args, async ({ jobManager }) => {
          const job = await jobManager.cancelJob(String(args.id), { cascade: args.cascade });
          print(args, job, `cancelled job ${job.id}`);
        });
      },
    )
    .command(
      "retry <id>",
      "Put a failed or cancelled job back to pending (--downstream: and its cancelled descendants)",
      (y) => y.positional("id", { type: "string", demandOption: true }).options({ downstream: { type: "boolean", default: false, describe: "Restore its cancelled descendants too" } }),
      async (args) => {
        await withDatabase(args, async ({ jobManager }) => {
          const job = await jobManager.retryJob(String(args.id), { downstream: args.downstream });
          print(args, job, `job ${job.id} is pending again`);
        });
      },
    )
    .command(
      "history",
      "List finished jobs, most recent first",
      (y) => y.options({ status: { type: "string", choices: ["completed", "failed", "cancelled"] }, limit: { type: "number", default: 50 } }),
      async (args) => {
        await withDatabase(args, async ({ jobManager }) => {
          const jobs = await jobManager.getJobHistory({ status: args.status as JobStatus | undefined, limit: numberFlag("limit", args.limit, { integer: true, positive: true }) });
          print(args, jobs, formatJobs(jobs));
        });
      },
    )
    .command(
      "cleanup",
      "Delete history older than N days",
      (y) => y.options({ days: { type: "number", demandOption: true, describe: "Keep this many days of history" } }),
      async (args) => {
        await withDatabase(args, async ({ jobManager }) => {
          const deleted = await jobManager.cleanupOldHistory(numberFlag("days", args.days, { min: 0 }) as number);
          print(args, { deleted }, `deleted ${deleted} history row(s) older than ${args.days} day(s)`);
        });
      },
    )
    .command(
      "explain <id>",
      "Say why a job is not running",
      (y) => y.positional("id", { type: "string", demandOption: true }),
      async (args) => {
        await withDatabase(args, async ({ jobManager }) => {
          const explanation = await jobManager.explain(String(args.id));
          if (!explanation) throw new UsageError(`job ${JSON.stringify(args.id)} not found`);
          print(args, explanation, formatExplanation(explanation));
        });
      },
    )
    .command(
      "create-task",
      "Create a task of no-op jobs for one tenant (load tests)",
      (y) =>
        y.options({
          tenant: { type: "string", demandOption: true, describe: "Tenant the task belongs to" },
          jobs: { type: "number", demandOption: true, describe: "How many no-op jobs" },
          provider: { type: "string", describe: "Rate-limit key the jobs are charged to, e.g. openai" },
          name: { type: "string", describe: "Task name (default: load test)" },
          cost: { type: "number", describe: "Rate-limit cost per job (default 1)" },
        }),
      async (args) => {
        const count = numberFlag("jobs", args.jobs, { integer: true, positive: true }) as number;
        if (count > 100_000) throw new UsageError(`invalid --jobs ${count}: at most 100000`);
        const cost = numberFlag("cost", args.cost, { integer: true, positive: true });
        await withDatabase(args, async ({ jobManager }) => {
          const jobs = Array.from({ length: count }, (_, i) => ({
            jobType: "agent" as const,
            name: `noop ${i + 1}`,
            payload: { agent_name: NOOP_AGENT },
            rateLimitKey: args.provider,
            rateLimitCost: cost,
          }));
          const task = await jobManager.createTask({ tenant: args.tenant, name: args.name ?? "load test", jobs });
          print(args, task, `created task ${task.id} with ${task.totalJobs} job(s) for tenant ${args.tenant}`);
        });
      },
    )
    .command(
      "task <id>",
      "Show a task's progress",
      (y) => y.positional("id", { type: "string", demandOption: true }),
      async (args) => {
        await withDatabase(args, async ({ jobManager }) => {
          const task = await jobManager.getTask(String(args.id));
          if (!task) throw new UsageError(`task ${JSON.stringify(args.id)} not found`);
          print(args, task, formatTask(task));
        });
      },
    )
    .command(
      "rate-limits [specs..]",
      "List rate limits, or set them: skein rate-limits openai=120/s anthropic=80/s",
      (y) => y.positional("specs", { type: "string", array: true, describe: "key=N/s or key=N/m, optionally :burst" }).options({ remove: { type: "string", array: true, describe: "Keys whose limit to remove" } }),
      async (args) => {
        const specs = (args.specs ?? []).map((s) => parseRateLimitSpec(String(s)));
        await withDatabase(args, async ({ jobManager }) => {
          for (const { key, options } of specs) await jobManager.setRateLimit(key, options);
          for (const key of args.remove ?? []) await jobManager.removeRateLimit(String(key));
          const limits = await jobManager.getRateLimits();
          print(args, limits, formatRateLimits(limits));
        });
      },
    )
    .command(
      "sql",
      "Print Skein's migrations as one SQL script for its schema, to apply through your own migrations",
      (y) => y.options({ after: { type: "string", describe: "Only the migrations after this one (an upgrade: the last one your database has)" } }),
      (args) => {
        const config = buildConfig(args, process.env, false);
        process.stdout.write(migrationScript({ schema: SkeinSchema.of(config.schema), after: args.after }));
      },
    )
    .command(
      "demo",
      "Run the demo: a worker and a graph of jobs on the (embedded) database",
      (y) => y,
      async (args) => {
        const config = buildConfig(args, process.env, Boolean(process.stdout.isTTY));
        await runDemo(config, { json: args.json === true, tty: Boolean(process.stdout.isTTY) });
      },
    )
    .command(workflowCommands)
    .command(serverCommands)
    .demandCommand(1, "name a command (see --help)")
    .strict()
    .fail(failUsage)
    .version(false)
    .help()
    .parseAsync();
});
