/** Kinds of job the built-in executors run. */
export const JobType = {
  /** Runs `payload.agent_name` from the agent registry with `payload.parameters`. */
  AGENT: "agent",
  /** Passes `payload.query` and `payload.inferred_goal_output` to the query engine. */
  QUERY: "query",
} as const;
/** A job type: `"agent"` or `"query"`. */
export type JobType = (typeof JobType)[keyof typeof JobType];

/** Where a job is in its life. */
export const JobStatus = {
  PENDING: "pending",
  RUNNING: "running",
  COMPLETED: "completed",
  FAILED: "failed",
  CANCELLED: "cancelled",
} as const;
/** A job status string. */
export type JobStatus = (typeof JobStatus)[keyof typeof JobStatus];

/** Statuses a job ends in; a job in one of them lives in `job_history`. */
export const FINAL_STATUSES: readonly JobStatus[] = [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED];

/** A value that survives a round trip through JSON (and PostgreSQL's jsonb) unchanged. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/**
 * What happens to a job when one of its dependencies ends `failed` or
 * `cancelled`: `cancel` it (the default), `ignore` the failure (run once the
 * dependency has finished, seeing its failure in `ctx.dependencyResults`), or
 * `fail` it. Applied transitively.
 */
export type FailurePolicy = "cancel" | "ignore" | "fail";

/** A dependency: a job id, or `{ id, onFailure }` to choose the edge's failure policy. */
export type DependencySpec = string | { id: string; onFailure?: FailurePolicy };

/** The job id of a dependency spec. */
export function dependencyId(spec: DependencySpec): string {
  return typeof spec === "string" ? spec : spec.id;
}

/** What to create: the input of `createJob` and `createJobs`. */
export interface CreateJobInput {
  /** The job's id. Supply your own to reference jobs of the same `createJobs` call; else a new version 7 UUID (time-ordered). */
  id?: string;
  /** `"agent"` or `"query"` ({@link JobType}). */
  jobType: JobType;
  /** A short, non-empty name. */
  name: string;
  description?: string | null;
  /** Executor input: a JSON object. @defaultValue `{}` */
  payload?: JsonObject;
  /**
   * Jobs that must finish before this one may run (existing jobs or jobs of the
   * same call): ids, or `{ id, onFailure }` with a {@link FailurePolicy}.
   */
  dependencies?: DependencySpec[];
  /** How many times a failed attempt is retried. @defaultValue 3 */
  maxRetries?: number;
  /** Higher runs first. @defaultValue 0 */
  priority?: number;
  /** Earliest time the job may start. @defaultValue now */
  runAt?: Date | string;
  /** Abort an attempt that runs longer than this many seconds (counts as a failure). */
  timeoutSeconds?: number | null;
  /** Queue name; workers started with `queues` serve only theirs. @defaultValue "default" */
  queue?: string;
  /** The organisation the job belongs to; workers share slots between tenants round-robin. */
  tenant?: string | null;
  /** Rate-limit key (e.g. a provider, "openai"); see `JobManager.setRateLimit`. */
  rateLimitKey?: string | null;
  /** Tokens this job costs against its rate-limit key (e.g. estimated LLM tokens). @defaultValue 1 */
  rateLimitCost?: number;
  /** Concurrency key; see `JobManager.setConcurrencyLimit`. */
  concurrencyKey?: string | null;
  /** The job runs only on a worker whose tags include all of these. @defaultValue [] */
  tags?: string[];
}

/** A job, live (pending or running) or archived in history. */
export interface Job {
  id: string;
  jobType: string;
  name: string;
  description: string | null;
  payload: JsonObject;
  /** The dependencies as given at creation. */
  dependencies: DependencySpec[];
  maxRetries: number;
  /** Retries used so far. */
  retryCount: number;
  /** Attempts started so far. */
  attempts: number;
  status: JobStatus;
  errorMessage: string | null;
  result: JsonValue | null;
  priority: number;
  runAt: Date;
  /** Dependencies that have not completed yet (0 for archived jobs). */
  pendingDependencies: number;
  queue: string;
  tenant: string | null;
  rateLimitKey: string | null;
  rateLimitCost: number;
  concurrencyKey: string | null;
  tags: string[];
  /** The task this job belongs to, if any. */
  taskId: string | null;
  /** The job that created this one from inside its run (delegation), if any. */
  parentId: string | null;
  /** Jobs this one created from inside its run (delegation); filled by `getJob` only. */
  childIds?: string[];
  /** A child's key within its parent: the `key` it was delegated with, or `#<n>` (the n-th unkeyed delegation of the parent's run). */
  delegationKey: string | null;
  /** A child delegated with `detached: true`: its parent's failure or cancellation does not cancel it. */
  detached: boolean;
  /** The schedule that created the job, if any. */
  scheduleName: string | null;
  /** The schedule's tick the job was created for. */
  scheduledFor: Date | null;
  /** When the job's last dependency finished (null if it was ready when created). */
  readyAt: Date | null;
  timeoutSeconds: number | null;
  /** Worker holding the job's lease while it runs. */
  lockedBy: string | null;
  leaseExpiresAt: Date | null;
  startedAt: Date | null;
  completedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  /** Seconds from start to finish (archived jobs only). */
  durationSeconds: number | null;
  /** True when the job has finished and lives in `job_history`. */
  archived: boolean;
}

/** The input of `JobManager.createTask`. */
export interface CreateTaskInput {
  /** The task's id. @defaultValue a UUID */
  id?: string;
  /** The tenant the task (and its jobs, unless they name their own) belongs to. */
  tenant?: string | null;
  name: string;
  /** The task's jobs; they may depend on each other by caller-supplied ids. */
  jobs: CreateJobInput[];
}

/** A task and its progress. */
export interface Task {
  id: string;
  tenant: string | null;
  name: string;
  totalJobs: number;
  /** The task's jobs by status (live and archived). */
  counts: Record<JobStatus, number>;
  /** Finished jobs (completed, failed or cancelled) as a percentage of all, one decimal. */
  percentDone: number;
  /** True when every job has finished. */
  done: boolean;
  /** What executors last reported with `ctx.task.setStep(...)`. */
  currentStep: JsonValue | null;
  createdAt: Date;
  updatedAt: Date;
}
