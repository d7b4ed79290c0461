import { readFileSync } from "node:fs";
import type { CommandModule } from "yargs";
import type { CreateJobInput } from "../core/types";
import type { CreateScheduleInput } from "../schedules";
import { common, print, withDatabase, type Flags } from "./command";
import { UsageError } from "./config";
import { formatEvents, formatJobs, formatLogLine, formatSchedules, formatSteps } from "./format";
import { numberFlag } from "./main";

/** `skein logs`, `events`, `dlq` and `schedules`: the workflow commands. */

type IdArgs = Flags & { id: string };

const logs: CommandModule<Flags, IdArgs & { follow: boolean }> = {
  command: "logs <id>",
  describe: "Print a job's log lines (ctx.log); --follow streams them while it runs",
  builder: (y) => common(y).positional("id", { type: "string", demandOption: true }).options({ follow: { type: "boolean", default: false, describe: "Keep printing until the job finishes" } }) as never,
  handler: async (args) => {
    await withDatabase(args, async ({ jobManager }) => {
      const id = String(args.id);
      if (!(await jobManager.getJob(id))) throw new UsageError(`job ${JSON.stringify(id)} not found`);
      let after: string | undefined;
      const deadline = Date.now() + 24 * 3600_000;
      for (;;) {
        const lines = await jobManager.getJobLogs(id, { after, limit: 1000 });
        for (const line of lines) process.stdout.write((args.json ? JSON.stringify(line) : formatLogLine(line)) + "\n");
        if (lines.length > 0) after = lines[lines.length - 1].id;
        if (lines.length === 1000) continue;
        if (!args.follow || Date.now() > deadline) return;
        const job = await jobManager.getJob(id);
        if (!job || job.archived) {
          // One last read: lines written just before the job finished.
          for (const line of await jobManager.getJobLogs(id, { after, limit: 100_000 })) process.stdout.write((args.json ? JSON.stringify(line) : formatLogLine(line)) + "\n");
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    });
  },
};

const events: CommandModule<Flags, IdArgs> = {
  command: "events <id>",
  describe: "Print every state change of a job, with time and worker",
  builder: (y) => common(y).positional("id", { type: "string", demandOption: true }) as never,
  handler: async (args) => {
    await withDatabase(args, async ({ jobManager }) => {
      const list = await jobManager.getJobEvents(String(args.id));
      if (!list) throw new UsageError(`job ${JSON.stringify(args.id)} not found`);
      print(args, list, formatEvents(list));
    });
  },
};

const steps: CommandModule<Flags, IdArgs> = {
  command: "steps <id>",
  describe: "Print a job's durable steps (ctx.step) and sleeps (ctx.sleep): what later attempts get back instead of running them again",
  builder: (y) => common(y).positional("id", { type: "string", demandOption: true }) as never,
  handler: async (args) => {
    await withDatabase(args, async ({ jobManager }) => {
      const list = await jobManager.getJobSteps(String(args.id));
      if (!list) throw new UsageError(`job ${JSON.stringify(args.id)} not found`);
      print(args, list, formatSteps(list));
    });
  },
};

const dlq: CommandModule<Flags, Flags> = {
  command: "dlq <command>",
  describe: "The dead-letter queue: finally failed jobs (list, replay)",
  builder: (y) =>
    y
      .command({
        command: "list",
        describe: "List finally failed jobs",
        builder: (z) => common(z).options({ since: { type: "string", describe: "Only those failed since this ISO time" }, limit: { type: "number", default: 100 } }),
        handler: async (args) => {
          await withDatabase(args, async ({ jobManager }) => {
            const jobs = await jobManager.listDeadLetters({ since: args.since, limit: numberFlag("limit", args.limit, { integer: true, positive: true }) });
            print(args, jobs, formatJobs(jobs));
          });
        },
      })
      .command({
        command: "replay",
        describe: "Retry finally failed jobs and restore their cancelled dependents",
        builder: (z) =>
          common(z).options({
            id: { type: "string", array: true, describe: "Job ids to replay" },
            all: { type: "boolean", default: false, describe: "Replay every failed job" },
            since: { type: "string", describe: "Replay those failed since this ISO time" },
          }),
        handler: async (args) => {
          await withDatabase(args, async ({ jobManager }) => {
            const outcome = await jobManager.replayDeadLetters({ ids: args.id?.map(String), all: args.all ? true : undefined, since: args.since });
            const skipped = outcome.skipped.map((s) => `\n  skipped ${s.id}: ${s.reason}`).join("");
            print(args, outcome, `replayed ${outcome.replayed.length} job(s), ${outcome.restored} restored to pending${skipped}`);
          });
        },
      })
      .demandCommand(1, "name a dlq command: list or replay") as never,
  handler: () => undefined,
};

const schedules: CommandModule<Flags, Flags> = {
  command: "schedules <command>",
  describe: "Recurring schedules (list, create, pause, resume, delete)",
  builder: (y) =>
    y
      .command({
        command: "list",
        describe: "List schedules",
        builder: (z) => common(z),
        handler: async (args) => {
          await withDatabase(args, async ({ jobManager }) => {
            const list = await jobManager.listSchedules();
            print(args, list, formatSchedules(list));
          });
        },
      })
      .command({
        command: "create",
        describe: "Create a schedule: --cron EXPR or --every SECONDS, and the job to enqueue",
        builder: (z) =>
          common(z).options({
            name: { type: "string", demandOption: true, describe: "Unique schedule name" },
            cron: { type: "string", describe: 'Cron expression, e.g. "*/5 * * * *"' },
            every: { type: "number", describe: "Interval in seconds" },
            timezone: { type: "string", default: "UTC", describe: "IANA timezone for the cron expression" },
            type: { type: "string", choices: ["agent", "query"], demandOption: true, describe: "Job type" },
            "job-name": { type: "string", describe: "Name of each job (default: the schedule's name)" },
            payload: { type: "string", describe: "Payload JSON, or @file.json" },
            "catch-up": { type: "string", choices: ["once", "skip"], default: "once", describe: "Missed ticks: run once, or skip" },
          }),
        handler: async (args) => {
          const payload = args.payload === undefined ? undefined : parseJson(args.payload);
          const jobTemplate = { jobType: args.type, name: args["job-name"] ?? args.name, payload } as Omit<CreateJobInput, "id">;
          const input: CreateScheduleInput = {
            name: args.name,
            cron: args.cron,
            intervalSeconds: numberFlag("every", args.every, { integer: true, positive: true }),
            timezone: args.timezone,
            jobTemplate,
            catchUp: args["catch-up"] as "once" | "skip",
          };
          await withDatabase(args, async ({ jobManager }) => {
            const created = await jobManager.createSchedule(input);
            print(args, created, `created schedule ${created.name}; next run at ${created.nextRunAt.toISOString()}`);
          });
        },
      })
      .command(nameCommand("pause", "Pause a schedule", (m, name) => m.pauseSchedule(name).then((s) => [s, `paused schedule ${s.name}`])))
      .command(nameCommand("resume", "Resume a schedule", (m, name) => m.resumeSchedule(name).then((s) => [s, `resumed schedule ${s.name}; next run at ${s.nextRunAt.toISOString()}`])))
      .command(
        nameCommand("delete", "Delete a schedule", async (m, name) => {
          if (!(await m.deleteSchedule(name))) throw new UsageError(`schedule ${JSON.stringify(name)} not found`);
          return [{ deleted: name }, `deleted schedule ${name}`];
        }),
      )
      .demandCommand(1, "name a schedules command: list, create, pause, resume or delete") as never,
  handler: () => undefined,
};

type Manager = Parameters<Parameters<typeof withDatabase>[1]>[0]["jobManager"];

function nameCommand(verb: string, describe: string, run: (m: Manager, name: string) => Promise<[unknown, string]>): CommandModule<Flags, Flags & { name: string }> {
  return {
    command: `${verb} <name>`,
    describe,
    builder: (z) => common(z).positional("name", { type: "string", demandOption: true }) as never,
    handler: async (args) => {
      await withDatabase(args, async ({ jobManager }) => {
        const [value, text] = await run(jobManager, String(args.name));
        print(args, value, text);
      });
    },
  };
}

function parseJson(text: string): Record<string, never> {
  const source = text.startsWith("@") ? readFileSync(text.slice(1), "utf8") : text;
  try {
    return JSON.parse(source) as Record<string, never>;
  } catch (error) {
    throw new UsageError(`invalid --payload: not JSON (${(error as Error).message})`);
  }
}

/** The workflow commands, for `yargs.command([...])`. */
export const workflowCommands = [logs, events, steps, dlq, schedules] as unknown as CommandModule[];
