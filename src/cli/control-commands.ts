import type { CommandModule } from "yargs";
import type { QueueInfo, WorkerInfo } from "../jobs";
import type { JobManager } from "../jobs/JobManager";
import { common, print, withDatabase, type Flags } from "./command";
import { table } from "./format";
import { numberFlag } from "./main";

/** `skein queues` and `skein workers`: operator controls. */

function formatQueues(list: QueueInfo[]): string {
  if (list.length === 0) return "no queues with live jobs, none paused";
  return table(
    ["queue", "state", "ready", "running", "waiting", "oldest ready"],
    list.map((q) => [q.name, q.paused ? `paused since ${q.pausedAt?.toISOString() ?? "?"}` : "active", String(q.ready), String(q.running), String(q.waiting), q.oldestReadySeconds === null ? "-" : `${q.oldestReadySeconds.toFixed(1)} s`]),
  );
}

function formatWorkers(list: WorkerInfo[]): string {
  if (list.length === 0) return "no workers registered";
  return table(
    ["worker", "state", "running", "slots", "queues", "tenants", "host/pid", "last heartbeat"],
    list.map((w) => [
      w.id,
      w.status,
      String(w.running),
      String(w.concurrency),
      w.queues?.join(",") ?? "all",
      w.tenants?.join(",") ?? "all",
      `${w.host}/${w.pid}`,
      w.lastHeartbeatAt.toISOString(),
    ]),
  );
}

type Run<T> = (m: JobManager, target: string) => Promise<[T, string]>;

function targetCommand<T>(verb: string, what: "name" | "id", describe: string, run: Run<T>): CommandModule<Flags, Flags & { target: string }> {
  return {
    command: `${verb} <target>`,
    describe,
    builder: (z) => common(z).positional("target", { type: "string", demandOption: true, describe: what === "name" ? "Queue name" : "Worker id" }) as never,
    handler: async (args) => {
      await withDatabase(args, async ({ jobManager }) => {
        const [value, text] = await run(jobManager, String(args.target));
        print(args, value, text);
      });
    },
  };
}

const queues: CommandModule<Flags, Flags> = {
  command: "queues <command>",
  describe: "Queues: list them, pause one (its jobs are claimed by no worker) or resume it",
  builder: (y) =>
    y
      .command({
        command: "list",
        describe: "Queues with live jobs or paused: ready, running, waiting, the oldest ready job's age",
        builder: (z) => common(z),
        handler: async (args) => {
          await withDatabase(args, async ({ jobManager }) => {
            const list = await jobManager.listQueues();
            print(args, list, formatQueues(list));
          });
        },
      })
      .command(targetCommand("pause", "name", "Pause a queue: its jobs stay pending until it is resumed; running ones finish", (m, name) => m.pauseQueue(name).then((q) => [q, `paused queue ${q.name} (${q.ready} ready, ${q.running} running)`])))
      .command(targetCommand("resume", "name", "Resume a paused queue", (m, name) => m.resumeQueue(name).then((q) => [q, `resumed queue ${q.name} (${q.ready} ready)`])))
      .demandCommand(1, "name a queues command: list, pause or resume") as never,
  handler: () => undefined,
};

const concurrency: CommandModule<Flags, Flags & { target: string; jobs: number }> = {
  command: "concurrency <target> <jobs>",
  describe: "Change how many jobs a running worker runs at once",
  builder: (z) => common(z).positional("target", { type: "string", demandOption: true, describe: "Worker id" }).positional("jobs", { type: "number", demandOption: true }) as never,
  handler: async (args) => {
    const n = numberFlag("jobs", args.jobs, { integer: true, positive: true }) as number;
    await withDatabase(args, async ({ jobManager }) => {
      const w = await jobManager.setWorkerConcurrency(String(args.target), n);
      print(args, w, `asked worker ${w.id} to run ${n} job(s) at once`);
    });
  },
};

const workers: CommandModule<Flags, Flags> = {
  command: "workers <command>",
  describe: "Workers: list them; quiet, drain or resume one; change its jobs at once",
  builder: (y) =>
    y
      .command({
        command: "list",
        describe: "Registered workers and their state (running, quiet, draining, stopping)",
        builder: (z) => common(z),
        handler: async (args) => {
          await withDatabase(args, async ({ jobManager }) => {
            const list = await jobManager.listWorkers();
            print(args, list, formatWorkers(list));
          });
        },
      })
      .command(targetCommand("quiet", "id", "Stop claiming: finish what runs, stay registered", (m, id) => m.quietWorker(id).then((w) => [w, `asked worker ${w.id} to go quiet`])))
      .command(targetCommand("drain", "id", "Stop claiming, then exit once idle", (m, id) => m.drainWorker(id).then((w) => [w, `asked worker ${w.id} to drain`])))
      .command(targetCommand("resume", "id", "Claim again", (m, id) => m.resumeWorker(id).then((w) => [w, `asked worker ${w.id} to resume`])))
      .command(concurrency)
      .demandCommand(1, "name a workers command: list, quiet, drain, resume or concurrency") as never,
  handler: () => undefined,
};

/** The operator commands. */
export const controlCommands = [queues, workers] as unknown as CommandModule[];
