import { DuplicateJobIdError, UnknownDependencyError, ValidationError } from "../core/errors";
import type { CreateJobInput, Job } from "../core/types";
import { databaseInTransaction, sqlState, SqlState, type RawQueryClient, type Sql } from "../db/database";
import { archivedStatuses, existingIds, insertEdges, insertEnded, insertJobs, insertJobsIfNew, lockLiveJobs, notifyReady, type NewJobRow } from "../db/sql/insert";
import { toJob, type JobRow } from "../db/sql/rows";
import { retryDeadlocks, type JobsContext } from "./context";
import { orderBatch, planJobs, type DependencyState, type JobPlan } from "./dependencies";
import { normalizeJobInput, type NormalizedJob } from "./validation";

/** What ties new jobs to a task, to the job that created them, or to the schedule tick that made them. */
export interface JobLink {
  taskId: string | null;
  parentId: string | null;
  /** Tenant for jobs that name none (a task's or a parent's). */
  tenant: string | null;
  /** Children's keys within their parent, by job id (delegation). */
  keys?: ReadonlyMap<string, string>;
  /** Children that outlive their parent's failure or cancellation. */
  detached?: boolean;
  /** The schedule and tick that made the jobs. */
  schedule?: { name: string; tick: Date };
}
export const NO_LINK: JobLink = { taskId: null, parentId: null, tenant: null };

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

/** What a write inside a transaction did. */
export interface Written {
  rows: JobRow[];
  /** A job is ready and due: workers should be told after the commit. */
  ready: boolean;
}

/** A job as `createJobs` returns it: no children yet. */
function createdJob(row: JobRow): Job {
  const job = toJob(row);
  job.childIds = [];
  return job;
}

/** The ids the caller supplied: only these can be taken already (see `NormalizedJob.idGiven`). */
function suppliedIds(jobs: readonly NormalizedJob[]): string[] {
  return jobs.filter((job) => job.idGiven).map((job) => job.id);
}

/** The row to insert for a planned job. */
function newJobRow(plan: JobPlan, link: JobLink): NewJobRow {
  const job = plan.job;
  return {
    id: job.id,
    job_type: job.jobType,
    name: job.name,
    description: job.description,
    payload: job.payload,
    dependencies: job.dependencies,
    max_retries: job.maxRetries,
    priority: job.priority,
    run_at: job.runAt ? job.runAt.toISOString() : null,
    pending_dependencies: plan.pendingDependencies,
    timeout_seconds: job.timeoutSeconds,
    queue: job.queue,
    tenant: job.tenant ?? link.tenant,
    rate_limit_key: job.rateLimitKey,
    rate_limit_cost: job.rateLimitCost,
    concurrency_key: job.concurrencyKey,
    tags: job.tags,
    task_id: link.taskId,
    parent_id: link.parentId,
    delegation_key: link.keys?.get(job.id) ?? null,
    detached: link.detached === true,
    schedule_name: link.schedule?.name ?? null,
    scheduled_for: link.schedule?.tick.toISOString() ?? null,
  };
}

/**
 * Creating jobs, with the dependency rules: validation first, then one
 * transaction (or one statement for jobs without dependencies) that checks
 * the supplied ids, locks the live dependencies, and inserts rows and edges.
 */
export class JobWriter {
  constructor(private readonly ctx: JobsContext) {}

  /** Creates jobs atomically; see `JobManager.createJobs`. */
  async create(inputs: readonly CreateJobInput[], options: CreateJobOptions = {}): Promise<Job[]> {
    if (!Array.isArray(inputs)) throw new ValidationError("jobs", "must be an array");
    const normalized = inputs.map((input, i) => normalizeJobInput(input, inputs.length > 1 ? `jobs[${i}].` : ""));
    if (normalized.length === 0) return [];
    const ordered = orderBatch(normalized);
    const inCallerTx = options.tx !== undefined;
    const link: JobLink = options.parent ? { parentId: options.parent.id, tenant: options.parent.tenant, taskId: options.parent.taskId } : NO_LINK;
    if (!inCallerTx && ordered.every((job) => job.dependencyIds.length === 0)) return this.createIndependent(normalized, ordered, link);
    const db = inCallerTx ? databaseInTransaction(options.tx as RawQueryClient, this.ctx.db.schema) : this.ctx.db;
    const { rows, ready } = await retryDeadlocks(inCallerTx, () =>
      db.transaction(async (sql) => {
        const written = await this.write(sql, ordered, link);
        // In the caller's transaction the notification is sent at its commit (and never on rollback).
        if (inCallerTx && written.ready) await notifyReady(sql);
        return written;
      }),
    );
    if (!inCallerTx) {
      if (ready) this.ctx.notifier.poke();
      this.ctx.wrote(rows.length);
    }
    return inInputOrder(normalized, rows);
  }

  /** Jobs without dependencies, outside a caller's transaction: one statement (check and insert), no BEGIN/COMMIT. */
  private async createIndependent(normalized: readonly NormalizedJob[], ordered: readonly NormalizedJob[], link: JobLink): Promise<Job[]> {
    const rowsIn = planJobs(ordered, new Map()).map((plan) => newJobRow(plan, link));
    // Unless another insert is carrying one, this insert wakes the workers itself at its commit.
    const carried = this.ctx.notifier.carry();
    let written: { rows: JobRow[]; taken: string[]; sent: boolean };
    try {
      written = await retryDeadlocks(false, () => insertJobsIfNew(this.ctx.db, rowsIn, suppliedIds(ordered), { notify: carried !== undefined }));
    } catch (error) {
      throw await duplicateOr(error, this.ctx.db, ordered);
    } finally {
      carried?.();
    }
    if (written.taken.length > 0) throw new DuplicateJobIdError(written.taken);
    this.ctx.wrote(written.rows.length);
    // Also when the insert carried nothing but a job came due meanwhile (or this clock runs ahead of the server's).
    const now = this.ctx.clock.now();
    if (!written.sent && written.rows.some((r) => r.pending_dependencies === 0 && r.run_at.getTime() <= now)) this.ctx.notifier.poke();
    return inInputOrder(normalized, written.rows);
  }

  /** Writes validated, ordered jobs in the caller's transaction. `link` ties them to a task, a parent or a schedule. */
  async write(sql: Sql, ordered: readonly NormalizedJob[], link: JobLink = NO_LINK): Promise<Written> {
    const supplied = suppliedIds(ordered);
    const taken = supplied.length > 0 ? await existingIds(sql, supplied) : [];
    if (taken.length > 0) throw new DuplicateJobIdError(taken);
    const plans = planJobs(ordered, await dependencyStates(sql, ordered));
    const toRow = (plan: JobPlan): NewJobRow => newJobRow(plan, link);
    const live = plans.filter((p) => !p.endedBy);
    const ended = plans.filter((p) => p.endedBy);
    try {
      const rows = live.length > 0 ? await insertJobs(sql, live.map(toRow)) : [];
      // Edges of ended jobs are kept too: retrying a dependency restores them (retryJob downstream).
      await insertEdges(sql, plans.flatMap((p) => p.job.dependencyIds.map((dep) => ({ job_id: p.job.id, depends_on_id: dep, on_failure: p.job.policies.get(dep) ?? "cancel" }))));
      const endedRows = ended.length > 0 ? await insertEnded(sql, ended.map((p) => endedRow(toRow(p), p))) : [];
      const now = this.ctx.clock.now();
      return { rows: [...rows, ...endedRows], ready: rows.some((r) => r.pending_dependencies === 0 && r.run_at.getTime() <= now) };
    } catch (error) {
      throw await duplicateOr(error, sql, ordered);
    }
  }
}

function endedRow(row: NewJobRow, plan: JobPlan): NewJobRow & { error_message: string; status: "failed" | "cancelled" } {
  const by = plan.endedBy as NonNullable<JobPlan["endedBy"]>;
  return { ...row, status: by.outcome, error_message: `${by.outcome} because job ${JSON.stringify(by.id)} ${by.status}` };
}

function inInputOrder(normalized: readonly NormalizedJob[], rows: readonly JobRow[]): Job[] {
  const byId = new Map(rows.map((row) => [row.id, createdJob(row)]));
  return normalized.map((job) => byId.get(job.id) as Job);
}

/**
 * Two calls raced to create the same id and the primary key refused the
 * loser: it gets the typed error naming the ids taken. Other errors pass.
 */
async function duplicateOr(error: unknown, sql: Sql, jobs: readonly NormalizedJob[]): Promise<unknown> {
  if (sqlState(error) !== SqlState.uniqueViolation) return error;
  const ids = jobs.map((job) => job.id);
  return new DuplicateJobIdError(await existingIds(sql, ids).catch(() => ids));
}

/** Where every dependency outside the batch stands; throws for unknown ids. */
async function dependencyStates(sql: Sql, ordered: readonly NormalizedJob[]): Promise<Map<string, DependencyState>> {
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
