import { systemClock, type Clock } from "../core/clock";
import { ValidationError } from "../core/errors";
import { silentLogger, type Logger } from "../core/logger";
import type { CreateJobInput, CreateTaskInput, Job, Task } from "../core/types";
import { clientSettings } from "../db/client";
import { databaseFor, type RawQueryClient } from "../db/database";
import { CancelNotifier, ReadyNotifier } from "../db/notifier";
import { StatisticsWatch } from "../db/statistics";
import { LimitService, type JobExplanation, type RateLimit, type RateLimitOptions } from "../limits";
import { ScheduleService, type CreateScheduleInput, type FiredTick, type Schedule, type ScheduledJobs } from "../schedules";
import type { JobsContext } from "./context";
import type { JobEvent } from "./events";
import { JobOperations, type CancelOptions, type ReplayOutcome } from "./operations";
import { JobReader, type HistoryQuery, type JobLogLine, type ListQuery, type ProvenanceQuery } from "./reads";
import { TaskService } from "./tasks";
import { normalizeJobInput } from "./validation";
import { WorkflowService, type DelegatingParent, type JobStep } from "./workflows";
import { ControlService, type QueueInfo, type WorkerInfo } from "./control";
import { JobWriter, NO_LINK, type CreateJobOptions } from "./writer";

export type { QueueInfo, WorkerInfo };
export type { CancelOptions, CreateJobOptions, DelegatingParent, HistoryQuery, JobLogLine, JobStep, ListQuery, ProvenanceQuery, ReplayOutcome };

/** Options for {@link JobManager}. */
export interface JobManagerOptions {
  /**
   * The PostgreSQL schema holding Skein's tables. A client from
   * `createPrismaClient` brings its own (this must then agree); give it with
   * an application's own Prisma client.
   * @defaultValue the client's schema, else "skein"
   */
  schema?: string;
  /** Where the manager logs. @defaultValue a silent logger */
  logger?: Logger;
  /** Time, for run times and schedules. @defaultValue the system clock */
  clock?: Clock;
  /**
   * After every 1,000 jobs it creates (outside a caller's transaction), check
   * in the background whether the job tables outgrew their planner statistics,
   * and analyse those this role may analyse (at most one ANALYZE per 2 seconds
   * across all processes; one pooled connection while it runs). Keeps inserts
   * on index lookups when jobs are created with no worker running. Only for
   * clients made by `createPrismaClient`.
   * @defaultValue true
   */
  refreshStatistics?: boolean;
}

/**
 * Creates, reads and steers jobs. Jobs wait on other jobs (a DAG): a job is
 * ready once every dependency has finished as its edge requires (completed,
 * or failed with an `ignore` policy), and is cancelled (or failed) as soon as
 * one fails or is cancelled. All writes are atomic.
 *
 * A facade: each group of methods is a small service that owns its rules
 * (writing jobs, reading them, steering them, tasks, limits, schedules), all
 * sharing one {@link JobsContext}.
 */
export class JobManager {
  private readonly writer: JobWriter;
  private readonly reader: JobReader;
  private readonly operations: JobOperations;
  private readonly tasks: TaskService;
  private readonly limits: LimitService;
  private readonly schedules: ScheduleService;
  private readonly workflows: WorkflowService;
  private readonly control: ControlService;

  /**
   * @param prisma a client from `createPrismaClient` (fast path) or the
   *   application's own Prisma client for PostgreSQL.
   * @throws {@link ValidationError} for a bad schema name, or one the client disagrees with.
   */
  constructor(prisma: RawQueryClient, options: JobManagerOptions = {}) {
    const ctx = jobsContext(prisma, options);
    this.writer = new JobWriter(ctx);
    this.reader = new JobReader(ctx);
    this.operations = new JobOperations(ctx, this.reader);
    this.tasks = new TaskService(ctx, this.writer);
    this.limits = new LimitService(ctx.db);
    this.schedules = new ScheduleService(ctx, scheduledJobs(this.writer));
    this.workflows = new WorkflowService(ctx, this.writer, this.reader, this.operations);
    this.control = new ControlService(ctx);
  }

  /**
   * Creates one job. Throws {@link ValidationError}, `UnknownDependencyError`,
   * `DependencyCycleError` or `DuplicateJobIdError` without writing anything.
   */
  async createJob(input: CreateJobInput, options: CreateJobOptions = {}): Promise<Job> {
    const [job] = await this.writer.create([input], options);
    return job;
  }

  /**
   * Creates many jobs atomically (all or nothing). Jobs of one call may depend
   * on each other by caller-supplied ids, so a whole DAG is created at once.
   * Returns the jobs in input order.
   */
  createJobs(inputs: readonly CreateJobInput[], options: CreateJobOptions = {}): Promise<Job[]> {
    return this.writer.create(inputs, options);
  }

  /** The job, live or archived in history; `null` if no job has this id. */
  getJob(id: string): Promise<Job | null> {
    return this.reader.getJob(id);
  }

  /** Pending jobs whose dependencies have all completed and whose `runAt` has come, in the order workers take them. */
  getReadyJobs(options: { limit?: number } = {}): Promise<Job[]> {
    return this.reader.getReadyJobs(options);
  }

  /** Jobs by status: live ones for `pending`/`running` (or no status), archived ones for final statuses. */
  listJobs(options: ListQuery = {}): Promise<Job[]> {
    return this.reader.listJobs(options);
  }

  /** Finished jobs, most recently finished first. */
  getJobHistory(options: HistoryQuery = {}): Promise<Job[]> {
    return this.reader.getJobHistory(options);
  }

  /**
   * Every state change of a job (created, ready, started, retried, completed,
   * failed, cancelled, lease lost, released, rate limited) with its time and
   * worker, oldest first; kept after the job is archived. `null` if unknown.
   */
  getJobEvents(id: string): Promise<JobEvent[] | null> {
    return this.reader.getJobEvents(id);
  }

  /** Lines the job's executors wrote with `ctx.log`, oldest first, after the line with id `after` (for following). */
  getJobLogs(id: string, options: { after?: string; limit?: number } = {}): Promise<JobLogLine[]> {
    return this.reader.getJobLogs(id, options);
  }

  /**
   * Cancels a pending or running job. Its dependents follow their edges'
   * failure policies (by default they are cancelled too, transitively); with
   * `cascade: true` everything downstream is cancelled, running jobs included.
   * Running jobs lose their lease and their workers abort them at once (their
   * late results are refused). Cancelling an already cancelled job returns it
   * unchanged.
   */
  cancelJob(id: string, options: CancelOptions | string = {}): Promise<Job> {
    return this.operations.cancelJob(id, options);
  }

  /**
   * Puts a failed or cancelled job back to pending with its retry count reset.
   * With `downstream: true`, its cancelled descendants are restored to pending
   * too, keeping their edges. Its dependencies must not have failed or been
   * cancelled themselves (unless its edge ignores that; retry them first).
   */
  retryJob(id: string, options: { downstream?: boolean } = {}): Promise<Job> {
    return this.operations.retryJob(id, options);
  }

  /** Deletes history older than `days` days; returns how many rows were deleted. Live jobs are never affected. */
  cleanupOldHistory(days: number): Promise<number> {
    return this.operations.cleanupOldHistory(days);
  }

  /** Finally failed jobs (the dead-letter queue), most recent first. */
  listDeadLetters(options: { since?: Date | string; limit?: number } = {}): Promise<Job[]> {
    return this.reader.listDeadLetters(options);
  }

  /**
   * Replays finally failed jobs (`retryJob(id, { downstream: true })` each):
   * the given `ids`, those failed `since` a time, or `all`. A job whose own
   * dependencies can never complete is skipped with the reason.
   */
  replayDeadLetters(options: { ids?: string[]; since?: Date | string; all?: boolean }): Promise<ReplayOutcome> {
    return this.operations.replayDeadLetters(options);
  }

  /**
   * Sets the rate limit of a key (e.g. a provider), stored in the database so
   * that every worker obeys it together: `setRateLimit("openai", { perSecond: 120 })`,
   * or `{ perMinute: 90_000, burst: 5_000 }` with `rateLimitCost` as tokens.
   */
  setRateLimit(key: string, options: RateLimitOptions): Promise<RateLimit> {
    return this.limits.setRateLimit(key, options);
  }

  /** Removes a key's rate limit (and any pause); returns whether it had one. */
  removeRateLimit(key: string): Promise<boolean> {
    return this.limits.removeRateLimit(key);
  }

  /** Every rate limit, with the tokens available now. */
  getRateLimits(): Promise<RateLimit[]> {
    return this.limits.getRateLimits();
  }

  /** At most `maxRunning` jobs with this concurrency key run at once, across all workers; `null` removes the cap. */
  setConcurrencyLimit(key: string, maxRunning: number | null): Promise<void> {
    return this.limits.setConcurrencyLimit(key, maxRunning);
  }

  /** A tenant's share when several tenants have ready jobs (default 1): weight 3 gets three jobs per round. */
  setTenantWeight(tenant: string, weight: number): Promise<void> {
    return this.limits.setTenantWeight(tenant, weight);
  }

  /**
   * Why a job is not running: waiting on named dependencies, `runAt` in the
   * future, a rate limit (and when its next token comes), a full concurrency
   * key, no live worker for its queue or tags, or queued behind N jobs.
   * `null` for an unknown id.
   */
  async explain(id: string, options: { liveWithinSeconds?: number } = {}): Promise<JobExplanation | null> {
    const live = await this.limits.explainLive(id, options);
    if (live) return live;
    const archived = await this.reader.getJob(id);
    if (!archived) return null;
    return { id, status: archived.status, reasons: [], summary: `finished: ${archived.status}${archived.errorMessage ? ` (${archived.errorMessage})` : ""}` };
  }

  /**
   * Creates a task: a group of jobs for one tenant whose progress `getTask`
   * reports. The jobs (which may depend on each other, as in `createJobs`)
   * get the task's tenant unless they name their own. Atomic.
   */
  createTask(input: CreateTaskInput): Promise<Task> {
    return this.tasks.createTask(input);
  }

  /** A task with its jobs counted by status and the percentage finished; `null` if unknown. */
  getTask(id: string): Promise<Task | null> {
    return this.tasks.getTask(id);
  }

  /**
   * Creates a recurring schedule: every tick (a cron expression in a
   * timezone, or every `intervalSeconds`) enqueues one job from
   * `jobTemplate`, exactly once however many workers run. Workers run the
   * scheduler; see {@link JobManager.runDueSchedules}.
   */
  createSchedule(input: CreateScheduleInput, options: { now?: Date } = {}): Promise<Schedule> {
    return this.schedules.createSchedule(input, options);
  }

  /** Every schedule, by name. */
  listSchedules(): Promise<Schedule[]> {
    return this.schedules.listSchedules();
  }

  /** Stops a schedule's ticks until it is resumed. */
  pauseSchedule(name: string): Promise<Schedule> {
    return this.schedules.pauseSchedule(name);
  }

  /** Resumes a paused schedule from its next tick after now (ticks during the pause are not made up). */
  resumeSchedule(name: string, options: { now?: Date } = {}): Promise<Schedule> {
    return this.schedules.resumeSchedule(name, options);
  }

  /** Deletes a schedule (jobs it already created are untouched); returns whether it existed. */
  deleteSchedule(name: string): Promise<boolean> {
    return this.schedules.deleteSchedule(name);
  }

  /**
   * Enqueues the jobs of every schedule whose tick has come, exactly once per
   * tick across all schedulers. Workers call this every second; tests call it
   * with their own `now`.
   */
  runDueSchedules(options: { now?: Date } = {}): Promise<FiredTick[]> {
    return this.schedules.runDueSchedules(options);
  }

  /**
   * Pauses a queue: its jobs stay pending and no worker claims them, by any
   * claim path, until it is resumed; jobs already running finish, and jobs
   * workers hold claimed ahead of a free slot go back to pending.
   */
  pauseQueue(name: string): Promise<QueueInfo> {
    return this.control.pauseQueue(name);
  }

  /** Resumes a paused queue (workers are woken at once). */
  resumeQueue(name: string): Promise<QueueInfo> {
    return this.control.resumeQueue(name);
  }

  /** Every queue with live jobs or paused: ready, running and waiting jobs, whether it is paused, the oldest ready job's age. */
  listQueues(): Promise<QueueInfo[]> {
    return this.control.listQueues();
  }

  /** Registered workers, with their state (running, quiet, draining, stopping) and what operators asked of them. */
  listWorkers(): Promise<WorkerInfo[]> {
    return this.control.listWorkers();
  }

  /**
   * Asks a running worker to go quiet: it claims nothing (jobs it held
   * claimed ahead go back to pending), finishes what runs and stays
   * registered, until resumed. Reaches the worker within moments (NOTIFY;
   * its next heartbeat otherwise). @throws `WorkerNotFoundError`
   */
  quietWorker(id: string): Promise<WorkerInfo> {
    return this.control.requestOfWorker(id, { state: "quiet" });
  }

  /** Asks a running worker to drain: quiet, then stop once nothing runs (`run-worker` then exits 0). @throws `WorkerNotFoundError` */
  drainWorker(id: string): Promise<WorkerInfo> {
    return this.control.requestOfWorker(id, { state: "drain" });
  }

  /** Asks a quiet (or still draining) worker to claim again. @throws `WorkerNotFoundError` */
  resumeWorker(id: string): Promise<WorkerInfo> {
    return this.control.requestOfWorker(id, { state: "active" });
  }

  /** Changes how many jobs a running worker runs at once, without restarting it. @throws `WorkerNotFoundError` */
  setWorkerConcurrency(id: string, maxConcurrentJobs: number): Promise<WorkerInfo> {
    return this.control.requestOfWorker(id, { concurrency: maxConcurrentJobs });
  }

  /** A job's durable steps (`ctx.step`) and sleeps (`ctx.sleep`), oldest first; `null` if no job has this id. */
  getJobSteps(id: string): Promise<JobStep[] | null> {
    return this.workflows.steps(id);
  }

  /**
   * Cancels the unfinished children of every parked parent whose wait timed
   * out (`timeoutSeconds` of `ctx.delegate`); each such parent wakes and fails
   * with a timeout. Workers call this every second. Returns how many children
   * it cancelled.
   */
  expireWaits(): Promise<number> {
    return this.workflows.expireWaits();
  }

  /**
   * The worker's side of `ctx.delegate`: the children of a running job with
   * these keys, found (made by an earlier attempt) or created now, fenced by
   * the parent's lease (`undefined` when it is gone).
   * @internal
   */
  delegateChildren(parent: DelegatingParent, inputs: readonly CreateJobInput[], keys: readonly string[], options: { detached: boolean }): Promise<Job[] | undefined> {
    return this.workflows.delegate(parent, inputs, keys, options);
  }
}

/** The context every service of one manager shares. */
function jobsContext(prisma: RawQueryClient, options: JobManagerOptions): JobsContext {
  const db = databaseFor(prisma, options.schema);
  const logger = options.logger ?? silentLogger();
  // Only on createPrismaClient's pool: it finishes a query in flight when the client disconnects
  // and refuses later ones, where a client built elsewhere might quietly connect again.
  const pool = clientSettings(prisma)?.pool;
  const statistics = options.refreshStatistics === false || !pool ? undefined : new StatisticsWatch(db, logger, () => !pool.ended);
  return {
    db,
    clock: options.clock ?? systemClock,
    logger,
    notifier: new ReadyNotifier(db, (error) => logger.warn("ready notification failed", { error: String(error) })),
    cancelNotifier: new CancelNotifier(db, (error) => logger.warn("cancel notification failed", { error: String(error) })),
    wrote: (count) => void statistics?.wrote(count),
  };
}

/** Job creation as the scheduler needs it (schedules/ sits below jobs/: it gets this, never imports it). */
function scheduledJobs(writer: JobWriter): ScheduledJobs {
  return {
    checkTemplate(template, scheduleName) {
      if (typeof template !== "object" || template === null || Array.isArray(template)) throw new ValidationError("jobTemplate", "must be a job description object");
      const t = template as Record<string, unknown>;
      if (t.id !== undefined) throw new ValidationError("jobTemplate.id", "is chosen for each tick; leave it out");
      if (t.dependencies !== undefined) throw new ValidationError("jobTemplate.dependencies", "scheduled jobs cannot depend on other jobs");
      const withName = { name: scheduleName, ...t };
      normalizeJobInput(withName as unknown as CreateJobInput, "jobTemplate.");
      return withName;
    },
    async writeTick(sql, template, tick) {
      const job = normalizeJobInput({ ...(template as unknown as CreateJobInput), id: tick.jobId });
      return { ready: (await writer.write(sql, [job], { ...NO_LINK, schedule: { name: tick.scheduleName, tick: tick.tickAt } })).ready };
    },
  };
}
