import type { CommandModule } from "yargs";
import { readFileSync } from "node:fs";
import type { JobStatus } from "../core/types";
import type { ProvenanceQuery } from "../jobs/reads";
import { command, print, withDatabase } from "./command";
import { UsageError } from "./config";
import { formatExplanation, formatJob, formatJobs } from "./format";
import { numberFlag } from "./main";

/** `skein create-job`, `show`, `list`, `cancel`, `retry`, `history`, `cleanup`, `explain`: one job at a time. */

function parsePayload(text: string | undefined): Record<string, never> | undefined {
  if (text === undefined) return undefined;
  const source = text.startsWith("@") ? readFileSync(text.slice(1), "utf8") : text;
  try {
    return JSON.parse(source) as Record<string, never>;
  } catch (error) {
    throw new UsageError(`invalid --payload: not JSON (${(error as Error).message})`);
  }
}

export const createJob = command({
  command: "create-job",
  describe: "Create a job",
  builder: (y) =>
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
  handler: async (args) => {
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
});

export const show = command({
  command: "show <id>",
  describe: "Show a job (live or archived)",
  builder: (y) => y.positional("id", { type: "string", demandOption: true }),
  handler: async (args) => {
    await withDatabase(args, async ({ jobManager }) => {
      const job = await jobManager.getJob(String(args.id));
      if (!job) throw new UsageError(`job ${JSON.stringify(args.id)} not found`);
      print(args, job, formatJob(job));
    });
      },
});

/** Filters of `list` and `history`: where jobs came from. */
const PROVENANCE_FLAGS = {
  name: { type: "string", describe: "Only jobs of this name" },
  schedule: { type: "string", describe: "Only jobs a schedule of this name created" },
  parent: { type: "string", describe: "Only children of this job (ctx.delegate)" },
  "created-after": { type: "string", describe: "Only jobs created after this ISO 8601 time" },
  "created-before": { type: "string", describe: "Only jobs created before this ISO 8601 time" },
} as const;

function provenanceOf(args: { name?: string; schedule?: string; parent?: string; "created-after"?: string; "created-before"?: string }): ProvenanceQuery {
  return { name: args.name, scheduleName: args.schedule, parentId: args.parent, createdAfter: args["created-after"], createdBefore: args["created-before"] };
}

export const list = command({
  command: "list",
  describe: "List live jobs (or archived ones with --status completed|failed|cancelled)",
  builder: (y) => y.options({ status: { type: "string", choices: ["pending", "running", "completed", "failed", "cancelled"] }, limit: { type: "number", default: 50 }, ...PROVENANCE_FLAGS }),
  handler: async (args) => {
    await withDatabase(args, async ({ jobManager }) => {
      const jobs = await jobManager.listJobs({ status: args.status as JobStatus | undefined, limit: numberFlag("limit", args.limit, { integer: true, positive: true }), ...provenanceOf(args) });
      print(args, jobs, formatJobs(jobs));
    });
      },
});

export const cancel = command({
  command: "cancel <id>",
  describe: "Cancel a job (its dependents follow their edges' failure policies; --cascade cancels everything downstream)",
  builder: (y) => y.positional("id", { type: "string", demandOption: true }).options({ cascade: { type: "boolean", default: false, describe: "Cancel everything downstream, running jobs included" } }),
  handler: async (args) => {
    await withDatabase(args, async ({ jobManager }) => {
      const job = await jobManager.cancelJob(String(args.id), { cascade: args.cascade });
      print(args, job, `cancelled job ${job.id}`);
    });
      },
});

export const retry = command({
  command: "retry <id>",
  describe: "Put a failed or cancelled job back to pending (--downstream: and its cancelled descendants)",
  builder: (y) => y.positional("id", { type: "string", demandOption: true }).options({ downstream: { type: "boolean", default: false, describe: "Restore its cancelled descendants too" } }),
  handler: async (args) => {
    await withDatabase(args, async ({ jobManager }) => {
      const job = await jobManager.retryJob(String(args.id), { downstream: args.downstream });
      print(args, job, `job ${job.id} is pending again`);
    });
      },
});

export const history = command({
  command: "history",
  describe: "List finished jobs, most recent first",
  builder: (y) => y.options({ status: { type: "string", choices: ["completed", "failed", "cancelled"] }, limit: { type: "number", default: 50 }, ...PROVENANCE_FLAGS }),
  handler: async (args) => {
    await withDatabase(args, async ({ jobManager }) => {
      const jobs = await jobManager.getJobHistory({ status: args.status as JobStatus | undefined, limit: numberFlag("limit", args.limit, { integer: true, positive: true }), ...provenanceOf(args) });
      print(args, jobs, formatJobs(jobs));
    });
      },
});

export const cleanup = command({
  command: "cleanup",
  describe: "Delete history older than N days",
  builder: (y) => y.options({ days: { type: "number", demandOption: true, describe: "Keep this many days of history" } }),
  handler: async (args) => {
    await withDatabase(args, async ({ jobManager }) => {
      const deleted = await jobManager.cleanupOldHistory(numberFlag("days", args.days, { min: 0 }) as number);
      print(args, { deleted }, `deleted ${deleted} history row(s) older than ${args.days} day(s)`);
    });
      },
});

export const explain = command({
  command: "explain <id>",
  describe: "Say why a job is not running",
  builder: (y) => y.positional("id", { type: "string", demandOption: true }),
  handler: async (args) => {
    await withDatabase(args, async ({ jobManager }) => {
      const explanation = await jobManager.explain(String(args.id));
      if (!explanation) throw new UsageError(`job ${JSON.stringify(args.id)} not found`);
      print(args, explanation, formatExplanation(explanation));
    });
      },
});

/** The job commands, in the order `--help` lists them. */
export const jobCommands = [createJob, show, list, cancel, retry, history, cleanup, explain] as unknown as CommandModule[];
