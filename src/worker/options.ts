import type { RawQueryClient } from "../db/database";
import { ValidationError } from "../core/errors";
import { checkTags, checkText, LIMITS } from "../core/checks";
import type { Logger } from "../core/logger";
import type { Clock } from "../core/clock";
import type { AgentRegistry, QueryEngine } from "./types";

/** Options for {@link Worker}. Times are in seconds. */
export interface WorkerOptions {
  /**
   * A client from `createPrismaClient`, or the application's own Prisma
   * client for PostgreSQL (give `schema`, and `directUrl` for LISTEN).
   */
  prisma: RawQueryClient;
  /**
   * The PostgreSQL schema holding Skein's tables. A client from
   * `createPrismaClient` brings its own (this must then agree).
   * @defaultValue the client's schema, else "skein"
   */
  schema?: string;
  /** Agents the built-in agent executor can run, by name. @defaultValue `{}` */
  agentRegistry?: AgentRegistry;
  /** Answers `query` jobs. Without it, query jobs fail with "no query engine configured". */
  queryEngine?: QueryEngine;
  /** Most jobs run at once. @defaultValue 4 */
  maxConcurrentJobs?: number;
  /**
   * Jobs to hold claimed beyond the free slots, so a slot that frees up starts
   * its next job without a round trip to the database (like graphile-worker's
   * `localQueue`). `"auto"` follows the work: it holds what the slots finish
   * during two claim round trips (moving averages of both), so many for
   * short jobs (at most `max(100, 2 × maxConcurrentJobs)`, and at most ten per
   * slot) and none for jobs that take longer than a claim; a number fixes it
   * (0: never hold). Held jobs are `running` under this worker's lease
   * (renewed by heartbeats), start in claim order, and go back to pending on
   * `stop()` or when the limit falls; a job queued later with a higher
   * priority waits until they have started. Only plain jobs are held: jobs
   * under flow control (tenant, rate-limit or concurrency key) are claimed for
   * free slots only. @defaultValue "auto"
   */
  prefetch?: number | "auto";
  /** Seconds between polls when no notification arrives (jittered). @defaultValue 5 */
  pollInterval?: number;
  /** The worker's id. @defaultValue `<host>-<pid>-<random>` */
  workerId?: string;
  /** Lease length: a job whose worker stopped renewing it for this long is reclaimed. @defaultValue 60 */
  staleTimeout?: number;
  /** Seconds between heartbeats that renew leases. Must be below `staleTimeout`. @defaultValue 10 */
  heartbeatInterval?: number;
  /** Grace period for running jobs on stop. @defaultValue 30 */
  shutdownTimeout?: number;
  /** History older than this many days is pruned. @defaultValue 30 */
  historyRetentionDays?: number;
  /** Hours between prunes (one worker prunes per interval). @defaultValue 24 */
  cleanupIntervalHours?: number;
  /** Retry delay: base·2^retry seconds, jittered, capped at max. @defaultValue `{ baseSeconds: 1, maxSeconds: 300 }` */
  retryBackoff?: { baseSeconds?: number; maxSeconds?: number };
  /**
   * A URL that reaches PostgreSQL directly (not through a transaction-mode
   * pooler), for the LISTEN connection that wakes the worker when jobs are
   * ready. Defaults to the `directUrl` of a client from `createPrismaClient`,
   * or its own URL when no pooler is in between. Without any, the worker
   * polls every `pollInterval`.
   */
  directUrl?: string;
  /** @deprecated the former name of `directUrl`. */
  databaseUrl?: string;
  /** Rescue expired leases, prune history, fire due schedules and refresh the job tables' planner statistics from this worker. @defaultValue true */
  maintenance?: boolean;
  /** @defaultValue a silent logger */
  logger?: Logger;
  /** @defaultValue the system clock */
  clock?: Clock;
  /** Source of jitter. @defaultValue Math.random */
  random?: () => number;
  /** Queues this worker serves. @defaultValue every queue */
  queues?: string[];
  /** This worker's tags: it runs a job only if the job's tags are all among them. @defaultValue [] */
  tags?: string[];
  /**
   * Tenants this worker serves: it runs only their jobs (not another
   * tenant's, nor jobs without a tenant). @defaultValue every tenant
   */
  tenants?: string[];
}

/** Options with defaults applied. */
export type ResolvedWorkerOptions = Required<Omit<WorkerOptions, "workerId" | "schema" | "directUrl" | "databaseUrl" | "logger" | "clock" | "retryBackoff" | "queryEngine" | "queues" | "tenants">> &
  Pick<WorkerOptions, "workerId" | "schema" | "directUrl" | "logger" | "clock" | "queryEngine"> & {
    retryBackoff: { baseSeconds: number; maxSeconds: number };
    queues: string[] | null;
    tenants: string[] | null;
  };

/** Applies defaults and validates, naming the bad option. */
export function resolveWorkerOptions(options: WorkerOptions): ResolvedWorkerOptions {
  if (!options || typeof options !== "object") throw new ValidationError("options", "Worker needs an options object with `prisma`");
  if (!options.prisma || typeof options.prisma.$queryRawUnsafe !== "function") throw new ValidationError("prisma", "must be a Prisma client (see createPrismaClient)");
  const resolved: ResolvedWorkerOptions = {
    prisma: options.prisma,
    agentRegistry: options.agentRegistry ?? {},
    queryEngine: options.queryEngine,
    maxConcurrentJobs: positive(options.maxConcurrentJobs, "maxConcurrentJobs", 4, true),
    prefetch: options.prefetch === "auto" || options.prefetch === undefined ? "auto" : nonNegative(options.prefetch, "prefetch", 0, true),
    pollInterval: positive(options.pollInterval, "pollInterval", 5),
    workerId: options.workerId,
    staleTimeout: positive(options.staleTimeout, "staleTimeout", 60),
    heartbeatInterval: positive(options.heartbeatInterval, "heartbeatInterval", 10),
    shutdownTimeout: nonNegative(options.shutdownTimeout, "shutdownTimeout", 30),
    historyRetentionDays: nonNegative(options.historyRetentionDays, "historyRetentionDays", 30),
    cleanupIntervalHours: positive(options.cleanupIntervalHours, "cleanupIntervalHours", 24),
    retryBackoff: {
      baseSeconds: nonNegative(options.retryBackoff?.baseSeconds, "retryBackoff.baseSeconds", 1),
      maxSeconds: nonNegative(options.retryBackoff?.maxSeconds, "retryBackoff.maxSeconds", 300),
    },
    schema: options.schema,
    directUrl: options.directUrl ?? options.databaseUrl,
    maintenance: options.maintenance ?? true,
    logger: options.logger,
    clock: options.clock,
    random: options.random ?? Math.random,
    queues: options.queues === undefined || options.queues === null ? null : checkQueues(options.queues),
    tenants: options.tenants === undefined || options.tenants === null ? null : checkNames(options.tenants, "tenants"),
    tags: checkTags(options.tags, "tags"),
  };
  if (typeof resolved.agentRegistry !== "object") throw new ValidationError("agentRegistry", "must map agent names to functions");
  for (const [name, fn] of Object.entries(resolved.agentRegistry)) {
    if (typeof fn !== "function") throw new ValidationError(`agentRegistry.${name}`, "must be a function");
  }
  if (resolved.queryEngine !== undefined && typeof resolved.queryEngine !== "function") throw new ValidationError("queryEngine", "must be a function");
  if (resolved.heartbeatInterval >= resolved.staleTimeout) {
    throw new ValidationError("heartbeatInterval", `must be shorter than staleTimeout (${resolved.heartbeatInterval} >= ${resolved.staleTimeout})`);
  }
  if (resolved.directUrl !== undefined && (typeof resolved.directUrl !== "string" || resolved.directUrl.trim() === "")) {
    throw new ValidationError("directUrl", "must be a non-empty PostgreSQL connection string");
  }
  if (resolved.workerId !== undefined && (typeof resolved.workerId !== "string" || resolved.workerId.trim() === "")) {
    throw new ValidationError("workerId", "must be a non-empty string");
  }
  return resolved;
}

function checkQueues(value: unknown): string[] {
  return checkNames(value, "queues");
}

function checkNames(value: unknown, field: "queues" | "tenants"): string[] {
  if (!Array.isArray(value) || value.length === 0) throw new ValidationError(field, `must be a non-empty array of ${field === "queues" ? "queue" : "tenant"} names`);
  return [...new Set(value.map((q, i) => checkText(q, `${field}[${i}]`, LIMITS.keyLength, false)))];
}

function positive(value: unknown, name: string, fallback: number, integer = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new ValidationError(name, `must be a positive ${integer ? "integer" : "number"} (got ${String(value)})`);
  }
  return value;
}

function nonNegative(value: unknown, name: string, fallback: number, integer = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw new ValidationError(name, `must be ${integer ? "an integer" : "a number"} >= 0 (got ${String(value)})`);
  }
  return value;
}
