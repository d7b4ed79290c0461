import { databaseFor, databaseInTransaction, sqlState, SqlState, type Database, type RawQueryClient, type Sql } from "../db/database";
import { retryTransient } from "../db/store";
import { CancelNotifier, ReadyNotifier } from "../db/notifier";
import { StatisticsWatch } from "../db/statistics";
import { poolOf } from "../db/client";
import { childIds } from "../db/sql/graph";
import { archivedStatuses, existingIds, insertEnded, insertEdges, insertJobs, insertJobsIfNew, lockLiveJobs, notifyReady, type NewJobRow } from "../db/sql/insert";
import { findJob, historyJobs, liveJobs, pruneHistory, readyJobs } from "../db/sql/read";
import { toJob, type JobRow } from "../db/sql/rows";
import { silentLogger, type Logger } from "../core/logger";
import { orderBatch, planJobs, type DependencyState, type JobPlan } from "./dependencies";
import { DuplicateJobIdError, UnknownDependencyError, ValidationError } from "../core/errors";
import { FINAL_STATUSES, JobStatus, type CreateJobInput, type Job } from "../core/types";
import { normalizeJobInput, type NormalizedJob } from "./validation";
import { cancelInTransaction, retryInTransaction } from "./graph";

/** What ties new jobs to a task or to the job that created them. */
export interface JobLink {
  taskId: string | null;
  parentId: string | null;
  /** Tenant for jobs that name none (a task's tenant). */
  tenant: string | null;
}
export const NO_LINK: JobLink = { taskId: null, parentId: null, tenant: null };

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
  /**
   * After every 1,000 jobs it creates (outside a caller's transaction), check
   * in the background whether the job tables outgrew their planner statistics,
   * and analyse those this role may analyse (as workers with `maintenance` on
   * do every second; at most one ANALYZE per 2 seconds across all processes;
   * it takes one pooled connection while it runs). Keeps inserts on index
   * lookups when jobs are created with no worker running, e.g. a backlog
   * filled before workers start. Only for clients made by `createPrismaClient`.
   * @defaultValue true
   */
  refreshStatistics?: boolean;
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

/** A job as `createJobs` returns it: no children yet. */
function createdJob(row: JobRow): Job {
  const job = toJob(row);
  job.childIds = [];
  return job;
}

/** The ids the caller supplied: only these can be taken already (see `NormalizedJob.idGiven`). */
function suppliedIds(jobs: readonly NormalizedJob[]): string[] {
  const ids: string[] = [];
  for (const job of jobs) if (job.idGiven) ids.push(job.id);
  return ids;
}

/** The row to insert for a planned job. */
function newJobRow(plan: JobPlan, link: JobLink): NewJobRow {
  return {
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
  };
}

/**
 * The core of {@link JobManager}: creating, reading, cancelling and retrying
 * jobs, with the dependency rules. Flow control, tasks, schedules, the
 * dead-letter queue, events and logs are added by the classes built on it.
 */
export class JobManagerCore {
  protected readonly db: Database;
  protected readonly notifier: ReadyNotifier;
  protected readonly cancelNotifier: CancelNotifier;
  protected readonly logger: Logger;
  private readonly statistics: StatisticsWatch | undefined;

  /**
   * @param prisma a client from `createPrismaClient` (fast path) or the
   *   application's own Prisma client for PostgreSQL.
   * @throws {@link ValidationError} for a bad schema name, or one the client disagrees with.
   */
  constructor(prisma: RawQueryClient, options: JobManagerOptions = {}) {
    this.db = databaseFor(prisma, options.schema);
    this.logger = options.logger ?? silentLogger();
    this.notifier = new ReadyNotifier(this.db, (error) => this.logger.warn("ready notification failed", { error: String(error) }));
    this.cancelNotifier = new CancelNotifier(this.db, (error) => this.logger.warn("cancel notification failed", { error: String(error) }));
    // Only on createPrismaClient's pool: it finishes a query in flight when the client disconnects
    // and refuses later ones, where a client built elsewhere might quietly connect again.
    const pool = poolOf(prisma);
    this.statistics = options.refreshStatistics === false || !pool ? undefined : new StatisticsWatch(this.db, this.logger, () => !pool.ended);
  }

  /** Notes jobs written (committed) for the planner statistics check. */
  protected wroteJobs(count: number): void {
    this.statistics?.wrote(count);
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
    const link: JobLink = options.parent ? { parentId: options.parent.id, tenant: options.parent.tenant, taskId: options.parent.taskId } : NO_LINK;
    if (!inCallerTx && ordered.every((job) => job.dependencyIds.length === 0)) return this.createIndependentJobs(normalized, ordered, link);
    const db = inCallerTx ? databaseInTransaction(options.tx as RawQueryClient, this.db.schema) : this.db;
    const { rows, ready } = await this.retryDeadlocks(inCallerTx, () =>
      db.transaction(async (sql) => {
        const written = await this.writeJobs(sql, ordered, link);
        // In the caller's transaction the notification is sent at its commit (and never on rollback).
        if (inCallerTx && written.ready) await notifyReady(sql);
        return written;
      }),
    );
    if (!inCallerTx) {
      if (ready) this.notifier.poke();
      this.wroteJobs(rows.length);
    }
    const byId = new Map(rows.map((row) => [row.id, createdJob(row)]));
    return normalized.map((job) => byId.get(job.id) as Job);
  }

  /** Jobs without dependencies, outside a caller's transaction: one statement (check and insert), no BEGIN/COMMIT. */
  private async createIndependentJobs(normalized: ReturnType<typeof orderBatch>, ordered: ReturnType<typeof orderBatch>, link: JobLink): Promise<Job[]> {
    const rowsIn = planJobs(ordered, new Map()).map((plan) => newJobRow(plan, link));
    let written: { rows: JobRow[]; taken: string[]; sent: boolean };
    // Unless another insert is carrying one, this insert wakes the workers itself at its commit.
    const carried = this.notifier.carry();
    try {
      written = await this.retryDeadlocks(false, () => insertJobsIfNew(this.db, rowsIn, suppliedIds(ordered), { notify: carried !== undefined }));
    } catch (error) {
      // Two calls raced to create the same id: the loser gets the typed error.
      if (sqlState(error) === SqlState.uniqueViolation) {
        const ids = ordered.map((job) => job.id);
        throw new DuplicateJobIdError(await existingIds(this.db, ids).catch(() => ids));
      }
      throw error;
    } finally {
      carried?.();
    }
    if (written.taken.length > 0) throw new DuplicateJobIdError(written.taken);
    this.wroteJobs(written.rows.length);
    const now = Date.now();
    // Also when the insert carried nothing but a job came due meanwhile (or this clock runs ahead of the server's).
    if (!written.sent && written.rows.some((r) => r.pending_dependencies === 0 && r.run_at.getTime() <= now)) this.notifier.poke();
    const byId = new Map(written.rows.map((row) => [row.id, createdJob(row)]));
    return normalized.map((job) => byId.get(job.id) as Job);
  }

  /** Writes validated, ordered jobs in the caller's transaction. `link` ties them to a task or a parent job. */
  protected async writeJobs(sql: Sql, ordered: ReturnType<typeof orderBatch>, link: JobLink = NO_LINK): Promise<{ rows: JobRow[]; ready: boolean }> {
    const ids = ordered.map((job) => job.id);
    const supplied = suppliedIds(ordered);
    const taken = supplied.length > 0 ? await existingIds(sql, supplied) : [];
    if (taken.length > 0) throw new DuplicateJobIdError(taken);
    const plans = planJobs(ordered, await this.dependencyStates(sql, ordered));
    const toRow = (plan: JobPlan): NewJobRow => newJobRow(plan, link);
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
    this.wroteJobs(rows.length);
    return toJob(rows[0]);
  }

  /** Deletes history older than `days` days; returns how many rows were deleted. Live jobs are never affected. */
  async cleanupOldHistory(days: number): Promise<number> {
    if (typeof days !== "number" || !Number.isFinite(days) || days < 0) throw new ValidationError("days", "must be a non-negative number");
    return pruneHistory(this.db, days);
  }


  protected retryDeadlocks<T>(inCallerTx: boolean, fn: () => Promise<T>): Promise<T> {
    // Inside the caller's transaction a conflict aborts their transaction: only they can retry it.
    return inCallerTx ? fn() : retryTransient(fn);
  }
}

export function checkLimit(limit: number | undefined): number {
  if (limit === undefined) return 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new ValidationError("limit", "must be an integer from 1 to 100000");
  return limit;
}

export function checkSince(value: Date | string): Date {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) throw new ValidationError("since", "must be a valid Date or ISO 8601 string");
  return date;
}

export function checkStatus(status: unknown): JobStatus | undefined {
  if (status === undefined || status === null) return undefined;
  const all: readonly unknown[] = Object.values(JobStatus);
  if (!all.includes(status)) throw new ValidationError("status", `must be one of ${all.join(", ")}`);
  return status as JobStatus;
}
