import { databaseFor, databaseInTransaction, sqlState, SqlState, type Database, type RawQueryClient, type Sql } from "../db/database";
import { retryTransient } from "../db/store";
import { CancelNotifier, ReadyNotifier } from "../db/notifier";
import { childIds, deadLetters } from "../db/sql/graph";
import { archivedStatuses, existingIds, insertEnded, insertEdges, insertJobs, lockLiveJobs, notifyReady, type NewJobRow } from "../db/sql/insert";
import { findJob, historyJobs, liveJobs, pruneHistory, readyJobs } from "../db/sql/read";
import { toJob, type JobRow } from "../db/sql/rows";
import { silentLogger, type Logger } from "../logging";
import { orderBatch, planJobs, type DependencyState, type JobPlan } from "./dependencies";
import { DuplicateJobIdError, InvalidJobStateError, ScheduleNotFoundError, UnknownDependencyError, ValidationError } from "./errors";
import { FINAL_STATUSES, JobStatus, type CreateJobInput, type CreateTaskInput, type Job, type JsonValue, type Task } from "./types";
import { checkText, LIMITS, normalizeJobInput } from "./validation";
import { cancelInTransaction, retryInTransaction } from "./graph";
import { buildTimeline, type JobEvent } from "./events";
import { storedEvents } from "../db/sql/events";
import { advanceSchedule, deleteSchedule, insertSchedule, listSchedules, lockDueSchedules, recordTick, scheduleByName, setSchedulePaused } from "../db/sql/schedules";
import { planTicks, resolveSchedule, toSchedule, type CreateScheduleInput, type Schedule } from "../schedules";
import { readLogs } from "../db/sql/logs";
import { randomUUID } from "node:crypto";
import { deleteRateLimit, explainFacts, listRateLimits, upsertConcurrencyLimit, upsertRateLimit, upsertTenantWeight } from "../db/sql/limits";
import { insertTask, readTask } from "../db/sql/tasks";
import { explainFromFacts, resolveRateLimit, type JobExplanation, type RateLimit, type RateLimitOptions } from "../limits";

/** What ties new jobs to a task or to the job that created them. */
interface JobLink {
  taskId: string | null;
  parentId: string | null;
  /** Tenant for jobs that name none (a task's tenant). */
  tenant: string | null;
}
const NO_LINK: JobLink = { taskId: null, parentId: null, tenant: null };

/** Options for {@link JobManager}. */
export interface JobManagerOptions {
  /** Where the manager logs. @defaultValue a silent logger */
  logger?: Logger;
}

/** Options for `createJob` and `createJobs`. */
export interface CreateJobOptions {
  /**
   * A Prisma interactive-transaction client (`prisma.$transaction(async (tx) => ...)`).
   * The jobs are written in that transaction: if it rolls back, they never existed.
   */
  tx?: RawQueryClient;
  /**
   * The job creating these from inside its run (delegation): recorded as their
   * `parentId`; they inherit its tenant and task unless they name a tenant.
   */
  parent?: { id: string; tenant: string | null; taskId: string | null };
}

/** A stored log line of a job. */
export interface JobLogLine {
  /** Increasing id; pass the last one as `after` to follow. */
  id: string;
  attempt: number;
  at: Date;
  level: string;
  message: string;
  fields: Record<string, unknown> | null;
}

/** Options for {@link JobManager.cancelJob}. */
export interface CancelOptions {
  /** Cancel everything downstream too, running jobs included, whatever the edges' policies. @defaultValue false */
  cascade?: boolean;
  /** Recorded as the job's error message. @defaultValue "cancelled by request" */
  reason?: string;
}

/** Options for {@link JobManager.getJobHistory}. */
export interface HistoryQuery {
  /** @defaultValue 100 */
  limit?: number;
  offset?: number;
  /** Only jobs that ended with this status. */
  status?: JobStatus;
}

/** Options for {@link JobManager.listJobs}. */
export interface ListQuery {
  /** `pending`/`running` list live jobs; `completed`/`failed`/`cancelled` list history. Default: all live jobs. */
  status?: JobStatus;
  /** @defaultValue 100 */
  limit?: number;
}

/**
 * Creates, reads and steers jobs. Jobs wait on other jobs (a DAG): a job is
 * ready once every dependency has completed, and is cancelled as soon as one
 * fails or is cancelled. All writes are atomic.
 */
export class JobManager {
  private readonly db: Database;
  private readonly notifier: ReadyNotifier;
  private readonly cancelNotifier: CancelNotifier;
  private readonly logger: Logger;

  /** @param prisma a client from `createPrismaClient` (fast path) or any Prisma client for PostgreSQL. */
  constructor(prisma: RawQueryClient, options: JobManagerOptions = {}) {
    this.db = databaseFor(prisma);
    this.logger = options.logger ?? silentLogger();
    this.notifier = new ReadyNotifier(this.db, (error) => this.logger.warn("ready notification failed", { error: String(error) }));
    this.cancelNotifier = new CancelNotifier(this.db, (error) => this.logger.warn("cancel notification failed", { error: String(error) }));
  }

  /**
   * Creates one job. Throws {@link ValidationError}, {@link UnknownDependencyError},
   * {@link DependencyCycleError} or {@link DuplicateJobIdError} without writing anything.
   */
  async createJob(input: CreateJobInput, options: CreateJobOptions = {}): Promise<Job> {
    const [job] = await this.createJobs([input], options);
    return job;
  }

  /**
   * Creates many jobs atomically (all or nothing). Jobs of one call may depend
   * on each other by caller-supplied ids, so a whole DAG is created at once.
   * Returns the jobs in input order.
   */
  async createJobs(inputs: readonly CreateJobInput[], options: CreateJobOptions = {}): Promise<Job[]> {
    if (!Array.isArray(inputs)) throw new ValidationError("jobs", "must be an array");
    const normalized = inputs.map((input, i) => normalizeJobInput(input, inputs.length > 1 ? `jobs[${i}].` : ""));
    if (normalized.length === 0) return [];
    const ordered = orderBatch(normalized);
    const inCallerTx = options.tx !== undefined;
    const db = inCallerTx ? databaseInTransaction(options.tx as RawQueryClient) : this.db;
    const { rows, ready } = await this.retryDeadlocks(inCallerTx, () =>
      db.transaction(async (sql) => {
        const link: JobLink = options.parent
          ? { parentId: options.parent.id, tenant: options.parent.tenant, taskId: options.parent.taskId }
          : NO_LINK;
        const written = await this.writeJobs(sql, ordered, link);
        // In the caller's transaction the notification is sent at its commit (and never on rollback).
        if (inCallerTx && written.ready) await notifyReady(sql);
        return written;
      }),
    );
    if (ready && !inCallerTx) this.notifier.poke();
    const byId = new Map(rows.map((row) => [row.id, { ...toJob(row), childIds: [] as string[] }]));
    return normalized.map((job) => byId.get(job.id) as Job);
  }

  /** Writes validated, ordered jobs in the caller's transaction. `link` ties them to a task or a parent job. */
  protected async writeJobs(sql: Sql, ordered: ReturnType<typeof orderBatch>, link: JobLink = NO_LINK): Promise<{ rows: JobRow[]; ready: boolean }> {
    const ids = ordered.map((job) => job.id);
    const taken = await existingIds(sql, ids);
    if (taken.length > 0) throw new DuplicateJobIdError(taken);
    const plans = planJobs(ordered, await this.dependencyStates(sql, ordered));
    const toRow = (plan: JobPlan): NewJobRow => ({
      id: plan.job.id,
      job_type: plan.job.jobType,
      name: plan.job.name,
      description: plan.job.description,
      payload: plan.job.payload,
      dependencies: plan.job.dependencies,
      max_retries: plan.job.maxRetries,
      priority: plan.job.priority,
      run_at: plan.job.runAt ? plan.job.runAt.toISOString() : null,
      pending_dependencies: plan.pendingDependencies,
      timeout_seconds: plan.job.timeoutSeconds,
      queue: plan.job.queue,
      tenant: plan.job.tenant ?? link.tenant,
      rate_limit_key: plan.job.rateLimitKey,
      rate_limit_cost: plan.job.rateLimitCost,
      concurrency_key: plan.job.concurrencyKey,
      tags: plan.job.tags,
      task_id: link.taskId,
      parent_id: link.parentId,
    });
    const live = plans.filter((p) => !p.endedBy);
    const ended = plans.filter((p) => p.endedBy);
    try {
      const rows = live.length > 0 ? await insertJobs(sql, live.map(toRow)) : [];
      // Edges of ended jobs are kept too: retrying a dependency restores them (retryJob downstream).
      await insertEdges(sql, plans.flatMap((p) => p.job.dependencyIds.map((dep) => ({ job_id: p.job.id, depends_on_id: dep, on_failure: p.job.policies.get(dep) ?? "cancel" }))));
      const endedRows =
        ended.length > 0
          ? await insertEnded(
              sql,
              ended.map((p) => ({
                ...toRow(p),
                status: p.endedBy?.outcome ?? "cancelled",
                error_message: `${p.endedBy?.outcome} because job ${JSON.stringify(p.endedBy?.id)} ${p.endedBy?.status}`,
              })),
            )
          : [];
      const now = Date.now();
      const ready = rows.some((r) => r.pending_dependencies === 0 && r.run_at.getTime() <= now);
      return { rows: [...rows, ...endedRows], ready };
    } catch (error) {
      // Two calls raced to create the same id: the loser gets the typed error.
      if (sqlState(error) === SqlState.uniqueViolation) throw new DuplicateJobIdError(await existingIds(sql, ids).catch(() => ids));
      throw error;
    }
  }

  /** Where every dependency outside the batch stands; throws for unknown ids. */
  private async dependencyStates(sql: Sql, ordered: ReturnType<typeof orderBatch>): Promise<Map<string, DependencyState>> {
    const batch = new Set(ordered.map((job) => job.id));
    const external = [...new Set(ordered.flatMap((job) => job.dependencyIds))].filter((id) => !batch.has(id));
    const states = new Map<string, DependencyState>();
    if (external.length === 0) return states;
    for (const row of await lockLiveJobs(sql, external)) states.set(row.id, "live");
    const missing = external.filter((id) => !states.has(id));
    if (missing.length > 0) {
      for (const row of await archivedStatuses(sql, missing)) states.set(row.id, row.status as DependencyState);
      const unknown = missing.filter((id) => !states.has(id));
      if (unknown.length > 0) throw new UnknownDependencyError(unknown);
    }
    return states;
  }

  /** The job, live or archived in history; `null` if no job has this id. */
  async getJob(id: string): Promise<Job | null> {
    if (typeof id !== "string") throw new ValidationError("id", "must be a string");
    const row = await findJob(this.db, id);
    if (!row) return null;
    return { ...toJob(row), childIds: await childIds(this.db, id) };
  }

  /** Pending jobs whose dependencies have all completed and whose `runAt` has come, in the order workers take them. */
  async getReadyJobs(options: { limit?: number } = {}): Promise<Job[]> {
    return (await readyJobs(this.db, checkLimit(options.limit))).map(toJob);
  }

  /** Jobs by status: live ones for `pending`/`running` (or no status), archived ones for final statuses. */
  async listJobs(options: ListQuery = {}): Promise<Job[]> {
    const status = checkStatus(options.status);
    const limit = checkLimit(options.limit);
    const rows = status && FINAL_STATUSES.includes(status) ? await historyJobs(this.db, { status, limit }) : await liveJobs(this.db, { status, limit });
    return rows.map(toJob);
  }

  /** Finished jobs, most recently finished first. */
  async getJobHistory(options: HistoryQuery = {}): Promise<Job[]> {
    const status = checkStatus(options.status);
    if (status && !FINAL_STATUSES.includes(status)) throw new ValidationError("status", `history holds only ${FINAL_STATUSES.join(", ")} jobs`);
    const offset = options.offset ?? 0;
    if (!Number.isInteger(offset) || offset < 0) throw new ValidationError("offset", "must be a non-negative integer");
    return (await historyJobs(this.db, { status, limit: checkLimit(options.limit), offset })).map(toJob);
  }

  /**
   * Cancels a pending or running job. Its dependents follow their edges'
   * failure policies (by default they are cancelled too, transitively); with
   * `cascade: true` everything downstream is cancelled, running jobs included.
   * Running jobs lose their lease and their workers abort them at once (their
   * late results are refused). Cancelling an already cancelled job returns it
   * unchanged.
   */
  async cancelJob(id: string, options: CancelOptions | string = {}): Promise<Job> {
    const { cascade = false, reason = "cancelled by request" } = typeof options === "string" ? { reason: options } : options;
    const outcome = await this.retryDeadlocks(false, () => this.db.transaction((sql) => cancelInTransaction(sql, id, { cascade, reason })));
    if (outcome.ended.length > 0) this.cancelNotifier.send(outcome.ended);
    if (outcome.ready > 0) this.notifier.poke();
    return (await this.getJob(id)) as Job;
  }

  /**
   * Puts a failed or cancelled job back to pending with its retry count reset.
   * With `downstream: true`, its cancelled descendants are restored to pending
   * too, keeping their edges. Its dependencies must not have failed or been
   * cancelled themselves (unless its edge ignores that; retry them first).
   */
  async retryJob(id: string, options: { downstream?: boolean } = {}): Promise<Job> {
    const rows = await this.retryDeadlocks(false, () => this.db.transaction((sql) => retryInTransaction(sql, id, { downstream: options.downstream === true })));
    if (rows.some((r) => r.pending_dependencies === 0)) this.notifier.poke();
    return toJob(rows[0]);
  }

  /**
   * Every state change of a job (created, ready, started, retried, completed,
   * failed, cancelled, lease lost, released, rate limited) with its time and
   * worker, oldest first; kept after the job is archived. `null` if unknown.
   */
  async getJobEvents(id: string): Promise<JobEvent[] | null> {
    const job = await this.getJob(id);
    if (!job) return null;
    return buildTimeline(job, await storedEvents(this.db, id));
  }

  /** Lines the job's executors wrote with `ctx.log`, oldest first, after the line with id `after` (for following). */
  async getJobLogs(id: string, options: { after?: string; limit?: number } = {}): Promise<JobLogLine[]> {
    const after = options.after === undefined ? null : options.after;
    if (after !== null && !/^\d{1,18}$/.test(after)) throw new ValidationError("after", "must be a log line id");
    const rows = await readLogs(this.db, checkText(id, "id", LIMITS.idLength, false), after, checkLimit(options.limit ?? 1000));
    return rows.map((r) => ({ id: r.id, attempt: r.attempt, at: r.at, level: r.level, message: r.message, fields: r.fields }));
  }

  /**
   * Creates a recurring schedule: every tick (a cron expression in a
   * timezone, or every `intervalSeconds`) enqueues one job from
   * `jobTemplate`, exactly once however many workers run. Workers run the
   * scheduler; see {@link JobManager.runDueSchedules}.
   */
  async createSchedule(input: CreateScheduleInput, options: { now?: Date } = {}): Promise<Schedule> {
    const name = checkText(input?.name, "name", LIMITS.nameLength, false);
    const resolved = resolveSchedule(input, options.now ?? new Date());
    const template = checkTemplate(input.jobTemplate, name);
    const row = await insertSchedule(this.db, {
      id: randomUUID(),
      name,
      cron: resolved.cron,
      interval_seconds: resolved.intervalSeconds,
      timezone: resolved.timezone,
      job_template: template,
      catch_up: resolved.catchUp,
      next_run_at: resolved.firstRunAt,
    });
    if (!row) throw new ValidationError("name", `a schedule named ${JSON.stringify(name)} already exists`);
    return toSchedule(row);
  }

  /** Every schedule, by name. */
  async listSchedules(): Promise<Schedule[]> {
    return (await listSchedules(this.db)).map(toSchedule);
  }

  /** Stops a schedule's ticks until it is resumed. */
  async pauseSchedule(name: string): Promise<Schedule> {
    const row = await setSchedulePaused(this.db, checkText(name, "name", LIMITS.nameLength, false), true, null);
    if (!row) throw new ScheduleNotFoundError(name);
    return toSchedule(row);
  }

  /** Resumes a paused schedule from its next tick after now (ticks during the pause are not made up). */
  async resumeSchedule(name: string, options: { now?: Date } = {}): Promise<Schedule> {
    const existing = await scheduleByName(this.db, checkText(name, "name", LIMITS.nameLength, false));
    if (!existing) throw new ScheduleNotFoundError(name);
    const now = options.now ?? new Date();
    const next = existing.next_run_at > now ? existing.next_run_at : planTicks(existing, now).next;
    return toSchedule((await setSchedulePaused(this.db, name, false, next)) as NonNullable<Awaited<ReturnType<typeof setSchedulePaused>>>);
  }

  /** Deletes a schedule (jobs it already created are untouched); returns whether it existed. */
  async deleteSchedule(name: string): Promise<boolean> {
    return deleteSchedule(this.db, checkText(name, "name", LIMITS.nameLength, false));
  }

  /**
   * Enqueues the jobs of every schedule whose tick has come, once per tick:
   * the schedule's row is locked (other schedulers skip it) and the tick is
   * recorded under a unique key in the same transaction as its job. Ticks
   * missed while nothing ran follow the schedule's `catchUp` policy. Workers
   * call this every second; tests call it with their own `now`.
   */
  async runDueSchedules(options: { now?: Date } = {}): Promise<Array<{ schedule: string; tickAt: Date; jobId: string }>> {
    const now = options.now ?? new Date();
    const { fired, ready } = await this.retryDeadlocks(false, () =>
      this.db.transaction(async (sql) => {
        const out: Array<{ schedule: string; tickAt: Date; jobId: string }> = [];
        let anyReady = false;
        for (const row of await lockDueSchedules(sql, now, 100)) {
          const plan = planTicks(row, now);
          let ran: { at: Date; jobId: string } | null = null;
          if (plan.fire) {
            const job = normalizeJobInput({ ...(row.job_template as unknown as CreateJobInput) });
            if (await recordTick(sql, row.id, plan.fire, job.id)) {
              anyReady = (await this.writeJobs(sql, [job])).ready || anyReady;
              ran = { at: plan.fire, jobId: job.id };
              out.push({ schedule: row.name, tickAt: plan.fire, jobId: job.id });
            }
          }
          await advanceSchedule(sql, row.id, plan.next, ran);
        }
        return { fired: out, ready: anyReady };
      }),
    );
    if (ready) this.notifier.poke();
    return fired;
  }

  /** Finally failed jobs (the dead-letter queue), most recent first. */
  async listDeadLetters(options: { since?: Date | string; limit?: number } = {}): Promise<Job[]> {
    const since = options.since === undefined ? undefined : checkSince(options.since);
    return (await deadLetters(this.db, { since, limit: checkLimit(options.limit) })).map(toJob);
  }

  /**
   * Replays finally failed jobs (`retryJob(id, { downstream: true })` each):
   * the given `ids`, those failed `since` a time, or `all`. A job whose own
   * dependencies can never complete is skipped with the reason.
   */
  async replayDeadLetters(options: { ids?: string[]; since?: Date | string; all?: boolean }): Promise<{ replayed: string[]; restored: number; skipped: Array<{ id: string; reason: string }> }> {
    const chosen = [options.ids !== undefined, options.since !== undefined, options.all === true].filter(Boolean).length;
    if (chosen !== 1) throw new ValidationError("replay", "give exactly one of ids, since or all");
    const ids = options.ids?.map((id, i) => checkText(id, `ids[${i}]`, LIMITS.idLength, false));
    const since = options.since === undefined ? undefined : checkSince(options.since);
    const failed = await deadLetters(this.db, { ids, since, limit: 100_000 });
    const replayed: string[] = [];
    const skipped: Array<{ id: string; reason: string }> = [];
    let restored = 0;
    for (const row of failed.reverse()) {
      try {
        const rows = await this.retryDeadlocks(false, () => this.db.transaction((sql) => retryInTransaction(sql, row.id, { downstream: true })));
        replayed.push(row.id);
        restored += rows.length;
      } catch (error) {
        if (!(error instanceof InvalidJobStateError)) throw error;
        skipped.push({ id: row.id, reason: error.message });
      }
    }
    for (const id of ids ?? []) if (!failed.some((r) => r.id === id)) skipped.push({ id, reason: `job ${JSON.stringify(id)} is not a failed job in history` });
    if (replayed.length > 0) this.notifier.poke();
    return { replayed, restored, skipped };
  }

  /** Deletes history older than `days` days; returns how many rows were deleted. Live jobs are never affected. */
  async cleanupOldHistory(days: number): Promise<number> {
    if (typeof days !== "number" || !Number.isFinite(days) || days < 0) throw new ValidationError("days", "must be a non-negative number");
    return pruneHistory(this.db, days);
  }

  /**
   * Sets the rate limit of a key (e.g. a provider), stored in the database so
   * that every worker obeys it together: `setRateLimit("openai", { perSecond: 120 })`,
   * or `{ perMinute: 90_000, burst: 5_000 }` with `rateLimitCost` as tokens.
   */
  async setRateLimit(key: string, options: RateLimitOptions): Promise<RateLimit> {
    const name = checkText(key, "key", LIMITS.keyLength, false);
    const { ratePerSecond, burst } = resolveRateLimit(options);
    await upsertRateLimit(this.db, name, ratePerSecond, burst);
    return (await this.getRateLimits()).find((r) => r.key === name) as RateLimit;
  }

  /** Removes a key's rate limit (and any pause); returns whether it had one. */
  async removeRateLimit(key: string): Promise<boolean> {
    return deleteRateLimit(this.db, checkText(key, "key", LIMITS.keyLength, false));
  }

  /** Every rate limit, with the tokens available now. */
  async getRateLimits(): Promise<RateLimit[]> {
    return (await listRateLimits(this.db)).map((r) => ({ key: r.key, perSecond: r.rate_per_second, burst: r.burst, tokens: r.tokens, pausedUntil: r.paused_until }));
  }

  /** At most `maxRunning` jobs with this concurrency key run at once, across all workers; `null` removes the cap. */
  async setConcurrencyLimit(key: string, maxRunning: number | null): Promise<void> {
    const name = checkText(key, "key", LIMITS.keyLength, false);
    if (maxRunning !== null && (!Number.isInteger(maxRunning) || maxRunning < 1 || maxRunning > 1_000_000)) {
      throw new ValidationError("maxRunning", `must be an integer from 1 to 1000000, or null (got ${String(maxRunning)})`);
    }
    await upsertConcurrencyLimit(this.db, name, maxRunning);
  }

  /** A tenant's share when several tenants have ready jobs (default 1): weight 3 gets three jobs per round. */
  async setTenantWeight(tenant: string, weight: number): Promise<void> {
    const name = checkText(tenant, "tenant", LIMITS.keyLength, false);
    if (!Number.isInteger(weight) || weight < 1 || weight > 1000) throw new ValidationError("weight", `must be an integer from 1 to 1000 (got ${String(weight)})`);
    await upsertTenantWeight(this.db, name, weight);
  }

  /**
   * Why a job is not running: waiting on named dependencies, `runAt` in the
   * future, a rate limit (and when its next token comes), a full concurrency
   * key, no live worker for its queue or tags, or queued behind N jobs.
   * `null` for an unknown id.
   */
  async explain(id: string, options: { liveWithinSeconds?: number } = {}): Promise<JobExplanation | null> {
    const facts = await explainFacts(this.db, checkText(id, "id", LIMITS.idLength, false), options.liveWithinSeconds ?? 60);
    if (facts) return explainFromFacts(facts);
    const archived = await this.getJob(id);
    if (!archived) return null;
    const summary = `finished: ${archived.status}${archived.errorMessage ? ` (${archived.errorMessage})` : ""}`;
    return { id, status: archived.status, reasons: [], summary };
  }

  /**
   * Creates a task: a group of jobs for one tenant whose progress `getTask`
   * reports. The jobs (which may depend on each other, as in `createJobs`)
   * get the task's tenant unless they name their own. Atomic.
   */
  async createTask(input: CreateTaskInput): Promise<Task> {
    if (typeof input !== "object" || input === null) throw new ValidationError("task", "must be an object");
    const id = input.id === undefined ? randomUUID() : checkText(input.id, "id", LIMITS.idLength, false);
    const tenant = input.tenant === undefined || input.tenant === null ? null : checkText(input.tenant, "tenant", LIMITS.keyLength, false);
    const name = checkText(input.name, "name", LIMITS.nameLength, false);
    if (!Array.isArray(input.jobs) || input.jobs.length === 0) throw new ValidationError("jobs", "must be a non-empty array of jobs");
    const ordered = orderBatch(input.jobs.map((job, i) => normalizeJobInput(job, `jobs[${i}].`)));
    const { ready } = await this.retryDeadlocks(false, () =>
      this.db.transaction(async (sql) => {
        if (await readTask(sql, id)) throw new ValidationError("id", `a task with id ${JSON.stringify(id)} already exists`);
        await insertTask(sql, { id, tenant, name, totalJobs: ordered.length });
        return this.writeJobs(sql, ordered, { taskId: id, parentId: null, tenant });
      }),
    );
    if (ready) this.notifier.poke();
    return (await this.getTask(id)) as Task;
  }

  /** A task with its jobs counted by status and the percentage finished; `null` if unknown. */
  async getTask(id: string): Promise<Task | null> {
    const row = await readTask(this.db, checkText(id, "id", LIMITS.idLength, false));
    if (!row) return null;
    const counts = { pending: row.pending, running: row.running, completed: row.completed, failed: row.failed, cancelled: row.cancelled };
    const finished = row.completed + row.failed + row.cancelled;
    return {
      id: row.id,
      tenant: row.tenant,
      name: row.name,
      totalJobs: row.total_jobs,
      counts,
      percentDone: row.total_jobs === 0 ? 100 : Math.round((finished / row.total_jobs) * 1000) / 10,
      done: finished >= row.total_jobs,
      currentStep: (row.current_step ?? null) as JsonValue | null,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }

  private retryDeadlocks<T>(inCallerTx: boolean, fn: () => Promise<T>): Promise<T> {
    // Inside the caller's transaction a conflict aborts their transaction: only they can retry it.
    return inCallerTx ? fn() : retryTransient(fn);
  }
}

function checkLimit(limit: number | undefined): number {
  if (limit === undefined) return 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new ValidationError("limit", "must be an integer from 1 to 100000");
  return limit;
}

/** Validates a schedule's job template (as `createJob` would), without id or dependencies. */
function checkTemplate(template: unknown, name: string): Record<string, unknown> {
  if (typeof template !== "object" || template === null || Array.isArray(template)) throw new ValidationError("jobTemplate", "must be a job description object");
  const t = template as Record<string, unknown>;
  if (t.id !== undefined) throw new ValidationError("jobTemplate.id", "is chosen for each tick; leave it out");
  if (t.dependencies !== undefined) throw new ValidationError("jobTemplate.dependencies", "scheduled jobs cannot depend on other jobs");
  const withName = { name, ...t } as unknown as CreateJobInput;
  normalizeJobInput(withName, "jobTemplate.");
  return withName as unknown as Record<string, unknown>;
}

function checkSince(value: Date | string): Date {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) throw new ValidationError("since", "must be a valid Date or ISO 8601 string");
  return date;
}

function checkStatus(status: unknown): JobStatus | undefined {
  if (status === undefined || status === null) return undefined;
  const all: readonly unknown[] = Object.values(JobStatus);
  if (!all.includes(status)) throw new ValidationError("status", `must be one of ${all.join(", ")}`);
  return status as JobStatus;
}
