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
   * `{ wait: true }` resolves with the child's result, or throws
   * {@link DelegatedJobError} if it failed, was cancelled or timed out.
   *
   * Children are keyed within their parent (by `key`, or by call order:
   * `#1`, `#2`, ...), so a retried or resumed parent finds the children it
   * made instead of making them again: a completed child's result comes back
   * at once, a running one is awaited.
   *
   * Waiting never holds a slot or a lease: the attempt ends there and the job
   * is parked (pending) until its children end, then runs again from the
   * top, its steps ({@link JobContext.step}) giving back their stored results
   * and this call the child's. So do not catch the {@link JobSuspended} this
   * throws (or rethrow it). After `timeoutSeconds` from the child's creation
   * the child (and what depends on it) is cancelled, aborting it if it runs,
   * and this job fails without retrying. A failed or cancelled parent cancels
   * its children, running ones included, unless they were delegated with
   * `detached: true`.
   */
  delegate(spec: DelegateSpec): Promise<Job>;
  delegate(spec: DelegateSpec, options: DelegateOptions & { wait?: false }): Promise<Job>;
  delegate(spec: DelegateSpec, options: DelegateOptions & { wait: true }): Promise<JsonValue | null>;
  /**
   * Creates several children at once (atomically; they may depend on each
   * other; each keyed by its `key` or by call order). With `{ wait: true }`
   * resolves with their results in order, or throws the first failure.
   */
  delegateAll(specs: DelegateSpec[]): Promise<Job[]>;
  delegateAll(specs: DelegateSpec[], options: Omit<DelegateOptions, "key"> & { wait?: false }): Promise<Job[]>;
  delegateAll(specs: DelegateSpec[], options: Omit<DelegateOptions, "key"> & { wait: true }): Promise<Array<JsonValue | null>>;
  /**
   * A durable step: runs `fn` and stores what it returns (JSON, at most the
   * payload limit; `undefined` as null) under `name`; on a later attempt of
   * this job (a retry, a resume after waiting, a crash) it returns the stored
   * value without running `fn` again. Returns the stored value (as JSON reads
   * it back) the first time too. A name reached again in one run is keyed
   * `name#2`, `name#3`, ... Names: at most 200 characters, no `#`.
   */
  step<T>(name: string, fn: () => T | Promise<T>): Promise<T>;
  /**
   * Ends the attempt and runs the job again (from the top) `ms` after the
   * first time this sleep was reached, without holding a slot or a lease; on
   * that later run it returns at once. Like `delegate`, it throws
   * {@link JobSuspended}: do not catch it.
   */
  sleep(name: string, ms: number): Promise<void>;
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

/** Options of `ctx.delegate` and `ctx.delegateAll`. */
export interface DelegateOptions {
  /** Wait for the children's results (parking this job meanwhile). @defaultValue false */
  wait?: boolean;
  /** With `wait`: cancel the children still unfinished this many seconds after they were created, and fail. */
  timeoutSeconds?: number;
  /** `ctx.delegate` only: the child's key within this job (else `spec.key`, else its call order). */
  key?: string;
  /** The children outlive this job's failure or cancellation. @defaultValue false */
  detached?: boolean;
  /**
   * With `wait`: a child that failed fails this job retryably once, and this
   * job's next attempt retries the child (and waits again) instead of failing
   * for it again. Without it a child's failure fails this job for good.
   * @defaultValue false
   */
  retryFailed?: boolean;
}

/** A child to delegate: a job description with an optional key within its parent. */
export type DelegateSpec = CreateJobInput & { key?: string };

/**
 * Thrown by `ctx.delegate` (waiting) and `ctx.sleep`: the attempt ends and
 * the job is parked until it may go on. Let it propagate; once thrown, the
 * attempt parks whatever the executor does afterwards.
 */
export class JobSuspended extends Error {
  override name = "JobSuspended";
}

/** A delegated child did not complete: it failed, was cancelled, or did not finish in time (`reason`). */
export class DelegatedJobError extends Error {
  override name = "DelegatedJobError";
  constructor(
    readonly childId: string,
    readonly reason: "failed" | "cancelled" | "timeout",
    message: string,
    /** Whether this job may retry for it (`retryFailed`); otherwise it fails for good. */
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/**
 * Throw from an executor to fail the job at once, without retries (the
 * attempt can never succeed: bad input, unknown agent, missing configuration).
 */
export class NonRetryableError extends Error {
  override name = "NonRetryableError";
}
