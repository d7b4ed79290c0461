#!/usr/bin/env node
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { readStatus } from "../db/sql/status";
import { createLogger } from "../core/logger";
import { Worker } from "../worker/Worker";
import { createServer } from "../server";
import { buildConfig, UsageError, type CommonFlags } from "./config";
import { parseRateLimitSpec } from "../limits";
import { openDatabase } from "./database";
import { formatStatus, json } from "./format";
import { CONNECTION_FLAGS } from "./command";
import { failUsage, numberFlag, refuseEmptyNumbers, runCli } from "./main";
import { loadAgents, loadQueryEngine } from "./modules";

const argv = () =>
  yargs(hideBin(process.argv))
    .scriptName("run-worker")
    .usage("$0 [options]\n\nRuns a Skein worker: claims ready jobs and runs them. Stops gracefully on SIGINT/SIGTERM (a second signal forces it).")
    .options({
      ...CONNECTION_FLAGS,
      "poll-interval": { type: "number", describe: "Seconds between polls when no notification arrives", default: 5 },
      "max-concurrent-jobs": { type: "number", describe: "Jobs run at once", default: 4 },
      prefetch: { type: "string", describe: 'Jobs to hold claimed beyond the free slots: "auto" (follows how long jobs take against a claim) or a number (0: never)', default: "auto" },
      "log-level": { type: "string", choices: ["error", "warn", "info", "debug"], describe: "Log level", default: "info" },
      agents: { type: "string", describe: "Module whose exported functions are agents (by export name)" },
      "query-engine": { type: "string", describe: "Module whose default export answers query jobs" },
      "stale-timeout": { type: "number", describe: "Seconds without heartbeat before a job's lease expires and another worker reclaims it", default: 60 },
      "heartbeat-interval": { type: "number", describe: "Seconds between heartbeats", default: 10 },
      "shutdown-timeout": { type: "number", describe: "Grace period for running jobs on shutdown, in seconds", default: 30 },
      "history-retention-days": { type: "number", describe: "Prune history older than this", default: 30 },
      "cleanup-interval-hours": { type: "number", describe: "Hours between history prunes (one worker prunes)", default: 24 },
      "worker-id": { type: "string", describe: "This worker's id (default: host-pid-random)" },
      status: { type: "boolean", describe: "Print what runs, what waits and why, then exit", default: false },
      json: { type: "boolean", describe: "With --status: print JSON", default: false },
      "rate-limit": { type: "string", array: true, describe: "Set a rate limit for every worker: key=N/s or key=N/m, optionally :burst (repeatable)" },
      queues: { type: "string", describe: "Comma-separated queues to serve (default: every queue)" },
      tags: { type: "string", describe: "Comma-separated tags of this worker; it runs jobs whose tags are all among them" },
      tenants: { type: "string", describe: "Comma-separated tenants to serve: only their jobs run here (default: every tenant)" },
      serve: { type: "boolean", default: false, describe: "Also serve the HTTP API, /metrics and the dashboard (see skein serve)" },
      port: { type: "number", default: 8080, describe: "With --serve: port to listen on" },
      host: { type: "string", default: "127.0.0.1", describe: "With --serve: address to listen on" },
    })
    .strict()
    .fail(failUsage)
    .version(false)
    .help()
    .parseSync();

void runCli(async () => {
  refuseEmptyNumbers(hideBin(process.argv));
  const args = argv();
  const config = buildConfig(args as CommonFlags, process.env, Boolean(process.stderr.isTTY));
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  const maxConcurrentJobs = numberFlag("max-concurrent-jobs", args["max-concurrent-jobs"], { integer: true, positive: true }) as number;
  const options = {
    pollInterval: numberFlag("poll-interval", args["poll-interval"], { positive: true }),
    staleTimeout: numberFlag("stale-timeout", args["stale-timeout"], { positive: true }),
    heartbeatInterval: numberFlag("heartbeat-interval", args["heartbeat-interval"], { positive: true }),
    shutdownTimeout: numberFlag("shutdown-timeout", args["shutdown-timeout"], { min: 0 }),
    historyRetentionDays: numberFlag("history-retention-days", args["history-retention-days"], { min: 0 }),
    cleanupIntervalHours: numberFlag("cleanup-interval-hours", args["cleanup-interval-hours"], { positive: true }),
    prefetch: prefetchFlag(args.prefetch),
  };

  if (args.status) {
    const quiet = createLogger({ level: "warn", format: config.logFormat });
    const db = await openDatabase(config, quiet, { migrate: config.databaseUrl === undefined, maxConnections: 8 });
    try {
      const snapshot = await readStatus(db.db);
      for (const waiting of snapshot.waiting) {
        const explanation = await db.jobManager.explain(waiting.id, { liveWithinSeconds: options.staleTimeout ?? 60 });
        if (explanation) waiting.reason = explanation.summary;
      }
      process.stdout.write((args.json ? json(snapshot) : formatStatus(snapshot, options.staleTimeout ?? 60)) + "\n");
    } finally {
      await db.close();
    }
    return 0;
  }

  const rateLimits = (args["rate-limit"] ?? []).map((spec) => parseRateLimitSpec(String(spec)));
  const [queues, tags, tenants] = [listFlag(args.queues), listFlag(args.tags) ?? [], listFlag(args.tenants)];
  const agentRegistry = await loadAgents(args.agents, config.agentConfig);
  const queryEngine = await loadQueryEngine(args["query-engine"]);
  const db = await openDatabase(config, logger, { migrate: true, maxConnections: maxConcurrentJobs + 4 });
  for (const { key, options: limit } of rateLimits) await db.jobManager.setRateLimit(key, limit);
  const worker = new Worker({ prisma: db.prisma, agentRegistry, queryEngine, maxConcurrentJobs, workerId: args["worker-id"], logger, queues, tags, tenants, ...options });
  const stopped = new Promise<void>((resolve) => worker.once("stopped", resolve));
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      logger.info(`received ${signal}: finishing running jobs (send it again to force)`);
      void worker.stop();
    } else {
      logger.warn(`received ${signal} again: aborting running jobs`);
      void worker.stop({ force: true });
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  await worker.start();
  const server = args.serve ? await createServer({ prisma: db.prisma, adminToken: config.adminToken, logger, workers: [worker] }) : undefined;
  if (server) logger.info(`Skein API and dashboard on ${await server.listen({ port: numberFlag("port", args.port, { integer: true, min: 0 }) as number, host: args.host })}`);
  await stopped;
  await server?.close();
  await db.close();
  return 0;
}, { exitWhenDone: true });

/** A comma-separated flag as a list (undefined when not given). */
function listFlag(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (items.length === 0) throw new UsageError(`invalid list ${JSON.stringify(value)}: expected comma-separated names`);
  return items;
}

/** `--prefetch auto` or a non-negative integer. */
function prefetchFlag(value: string | undefined): number | "auto" | undefined {
  if (value === undefined || value === "auto") return value;
  const n = value.trim() === "" ? Number.NaN : Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`invalid --prefetch ${JSON.stringify(value)}: expected "auto" or an integer >= 0`);
  return n;
}
