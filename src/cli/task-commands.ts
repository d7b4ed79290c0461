import type { CommandModule } from "yargs";
import { command, print, withDatabase } from "./command";
import { UsageError } from "./config";
import { formatRateLimits, formatTask } from "./format";
import { numberFlag } from "./main";
import { parseRateLimitSpec } from "../limits";
import { NOOP_AGENT } from "../worker/executors";

/** `skein create-task`, `task` and `rate-limits`: tasks and flow control. */

export const createTask = command({
  command: "create-task",
  describe: "Create a task of no-op jobs for one tenant (load tests)",
  builder: (y) =>
    y.options({
      tenant: { type: "string", demandOption: true, describe: "Tenant the task belongs to" },
      jobs: { type: "number", demandOption: true, describe: "How many no-op jobs" },
      provider: { type: "string", describe: "Rate-limit key the jobs are charged to, e.g. openai" },
      name: { type: "string", describe: "Task name (default: load test)" },
      cost: { type: "number", describe: "Rate-limit cost per job (default 1)" },
    }),
  handler: async (args) => {
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
});

export const task = command({
  command: "task <id>",
  describe: "Show a task's progress",
  builder: (y) => y.positional("id", { type: "string", demandOption: true }),
  handler: async (args) => {
    await withDatabase(args, async ({ jobManager }) => {
      const task = await jobManager.getTask(String(args.id));
      if (!task) throw new UsageError(`task ${JSON.stringify(args.id)} not found`);
      print(args, task, formatTask(task));
    });
      },
});

export const rateLimits = command({
  command: "rate-limits [specs..]",
  describe: "List rate limits, or set them: skein rate-limits openai=120/s anthropic=80/s",
  builder: (y) => y.positional("specs", { type: "string", array: true, describe: "key=N/s or key=N/m, optionally :burst" }).options({ remove: { type: "string", array: true, describe: "Keys whose limit to remove" } }),
  handler: async (args) => {
    const specs = (args.specs ?? []).map((s) => parseRateLimitSpec(String(s)));
    await withDatabase(args, async ({ jobManager }) => {
      for (const { key, options } of specs) await jobManager.setRateLimit(key, options);
      for (const key of args.remove ?? []) await jobManager.removeRateLimit(String(key));
      const limits = await jobManager.getRateLimits();
      print(args, limits, formatRateLimits(limits));
    });
      },
});

/** The task and rate-limit commands. */
export const taskCommands = [createTask, task, rateLimits] as unknown as CommandModule[];
