import type { CreateJobInput, Job, JsonValue } from "../core/types";
import type { Logger } from "../core/logger";

/** What a running job's executor is given besides the job. */
export interface JobContext {
  /** The job being run (status `running`). */
  readonly job: Job;
  /** Id of the worker running it. */
  readonly workerId: string;
  /** 1 for the first attempt, 2 for the first retry, ... */
  readonly attempt: number;
  /** Results of the job's dependencies, keyed by job id (archived ones included). */
  readonly dependencyResults: Readonly<Record<string, JsonValue | null>>;
  /** The worker's logger, adding `jobId` and `workerId` to every line. */
  readonly logger: Logger;
  /** Fires when the attempt times out, the worker is forced to stop, or the job's lease is lost. */
  readonly signal: AbortSignal;
  /**
   * Reports that the provider pushed back (an HTTP 429 and its `Retry-After`):
   * the job goes back to pending without using a retry, and its rate-limit key
   * (if it has one) pauses for that long on every worker. Throws; call it as
   * `return ctx.rateLimited({ retryAfterSeconds: 30 })` or `throw ...`.
   */
  rateLimited(options?: { retryAfterSeconds?: number }): never;
  /** The job's task (see `JobManager.createTask`). */
  readonly task: TaskHandle;
  /**
   * Creates a job from inside this one (its `parentId` is this job; it
   * inherits this job's tenant and task unless it names a tenant). With
   * `{ wait: true }` resolves with the child's result, or throws its failure.
   *
   * Waiting does not hold the slot hostage: while it waits, this job runs the
   * child itself, within its own slot, whenever the child is ready and no
   * other worker has taken it (so a worker with `maxConcurrentJobs: 1` still
   * finishes). Children with a rate-limit or concurrency key are left to the
   * normal claim, which enforces their limits. After `timeoutSeconds` the
   * child (and what depends on it) is cancelled and this job fails.
   */
  delegate(spec: CreateJobInput): Promise<Job>;
  delegate(spec: CreateJobInput, options: { wait?: false }): Promise<Job>;
  delegate(spec: CreateJobInput, options: { wait: true; timeoutSeconds?: number }): Promise<JsonValue | null>;
  /**
   * Creates several children at once (atomically; they may depend on each
   * other). With `{ wait: true }` resolves with their results in order, or
   * throws the first failure (cancelling the children still unfinished).
   */
  delegateAll(specs: CreateJobInput[]): Promise<Job[]>;
  delegateAll(specs: CreateJobInput[], options: { wait?: false }): Promise<Job[]>;
  delegateAll(specs: CreateJobInput[], options: { wait: true; timeoutSeconds?: number }): Promise<Array<JsonValue | null>>;
  /** Stores log lines with the job (readable with `skein logs <id>`); also written to `logger`. */
  readonly log: JobLog;
}

/** The stored per-job log of `ctx.log`. */
export interface JobLog {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** What an executor can do with its job's task. */
export interface TaskHandle {
  /** The task's id, or null when the job belongs to no task. */
  readonly id: string | null;
  /** Records the task's current step (any JSON), shown by `getTask`. Throws if the job has no task. */
  setStep(step: JsonValue): Promise<void>;
}

/** Thrown by `ctx.rateLimited()`; the worker puts the job back without using a retry. */
export class RateLimitedError extends Error {
  override name = "RateLimitedError";
  constructor(readonly retryAfterSeconds: number) {
    super(`rate limited by the provider; retry after ${retryAfterSeconds} s`);
  }
}

/** Runs jobs of some kind. Executors are tried in order; the first whose `canExecute` says yes runs the job. */
export interface Executor {
  /** Shown in the worker registry and logs. */
  readonly name?: string;
  canExecute(job: Job): boolean;
  /** Returns the job's result, stored as JSON (`undefined` as null; a value JSON cannot hold fails the job). Throw to fail the attempt. */
  execute(job: Job, ctx: JobContext): Promise<unknown>;
}

/** An agent: called with `payload.parameters` of an `agent` job whose `payload.agent_name` names it. */
export type AgentFunction = (parameters: JsonValue | undefined, ctx: JobContext) => Promise<unknown>;

/** Agents by name. */
export type AgentRegistry = Record<string, AgentFunction>;

/** Input of the query engine, from a `query` job's payload. */
export interface QueryRequest {
  query: JsonValue | undefined;
  inferredGoalOutput: JsonValue | undefined;
}

/** Answers `query` jobs. */
export type QueryEngine = (request: QueryRequest, ctx: JobContext) => Promise<unknown>;

/**
 * Throw from an executor to fail the job at once, without retries (the
 * attempt can never succeed: bad input, unknown agent, missing configuration).
 */
export class NonRetryableError extends Error {
  override name = "NonRetryableError";
}
