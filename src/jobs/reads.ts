import { checkLimit, checkText, checkTime, LIMITS } from "../core/checks";
import { ValidationError } from "../core/errors";
import { FINAL_STATUSES, JobStatus, type Job } from "../core/types";
import { storedEvents } from "../db/sql/events";
import { childIds, deadLetters } from "../db/sql/graph";
import { readLogs } from "../db/sql/logs";
import { findJob, historyJobs, liveJobs, readyJobs, type ProvenanceFilter } from "../db/sql/read";
import { toJob } from "../db/sql/rows";
import type { JobsContext } from "./context";
import { buildTimeline, type JobEvent } from "./events";

/** Where jobs came from: filters of `listJobs` and `getJobHistory` (each optional; all given must hold). */
export interface ProvenanceQuery {
  /** Jobs of exactly this name. */
  name?: string;
  /** Jobs created by this schedule. */
  scheduleName?: string;
  /** Children of this job (created with `ctx.delegate`). */
  parentId?: string;
  /** Jobs created after this time. */
  createdAfter?: Date | string;
  /** Jobs created before this time. */
  createdBefore?: Date | string;
}

/** Checks a {@link ProvenanceQuery}; a bad value is a ValidationError naming it. */
export function checkProvenance(q: ProvenanceQuery): ProvenanceFilter {
  const text = (value: string | undefined, field: string, max: number) => (value === undefined ? undefined : checkText(value, field, max, false));
  const time = (value: Date | string | undefined, field: string) => (value === undefined ? undefined : checkTime(value, field));
  return {
    name: text(q.name, "name", LIMITS.nameLength),
    scheduleName: text(q.scheduleName, "scheduleName", LIMITS.nameLength),
    parentId: text(q.parentId, "parentId", LIMITS.idLength),
    createdAfter: time(q.createdAfter, "createdAfter"),
    createdBefore: time(q.createdBefore, "createdBefore"),
  };
}

/** Options for {@link JobReader.getJobHistory}. */
export interface HistoryQuery extends ProvenanceQuery {
  /** @defaultValue 100 */
  limit?: number;
  offset?: number;
  /** Only jobs that ended with this status. */
  status?: JobStatus;
}

/** Options for {@link JobReader.listJobs}. */
export interface ListQuery extends ProvenanceQuery {
  /** `pending`/`running` list live jobs; `completed`/`failed`/`cancelled` list history. Default: all live jobs. */
  status?: JobStatus;
  /** @defaultValue 100 */
  limit?: number;
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

/** A job status, or undefined; anything else is a ValidationError. */
export function checkStatus(status: unknown): JobStatus | undefined {
  if (status === undefined || status === null) return undefined;
  const all: readonly unknown[] = Object.values(JobStatus);
  if (!all.includes(status)) throw new ValidationError("status", `must be one of ${all.join(", ")}`);
  return status as JobStatus;
}

/** Reading jobs, live or archived: one job, listings, its timeline and its log lines. */
export class JobReader {
  constructor(private readonly ctx: JobsContext) {}

  /** The job, live or archived in history, with its children's ids; `null` if no job has this id. */
  async getJob(id: string): Promise<Job | null> {
    if (typeof id !== "string") throw new ValidationError("id", "must be a string");
    const row = await findJob(this.ctx.db, id);
    if (!row) return null;
    return { ...toJob(row), childIds: await childIds(this.ctx.db, id) };
  }

  /** Pending jobs whose dependencies have all completed and whose `runAt` has come, in the order workers take them. */
  async getReadyJobs(options: { limit?: number } = {}): Promise<Job[]> {
    return (await readyJobs(this.ctx.db, checkLimit(options.limit))).map(toJob);
  }

  /** Jobs by status: live ones for `pending`/`running` (or no status), archived ones for final statuses. */
  async listJobs(options: ListQuery = {}): Promise<Job[]> {
    const status = checkStatus(options.status);
    const limit = checkLimit(options.limit);
    const filter = checkProvenance(options);
    const rows = status && FINAL_STATUSES.includes(status) ? await historyJobs(this.ctx.db, { status, limit, ...filter }) : await liveJobs(this.ctx.db, { status, limit, ...filter });
    return rows.map(toJob);
  }

  /** Finished jobs, most recently finished first. */
  async getJobHistory(options: HistoryQuery = {}): Promise<Job[]> {
    const status = checkStatus(options.status);
    if (status && !FINAL_STATUSES.includes(status)) throw new ValidationError("status", `history holds only ${FINAL_STATUSES.join(", ")} jobs`);
    const offset = options.offset ?? 0;
    if (!Number.isInteger(offset) || offset < 0) throw new ValidationError("offset", "must be a non-negative integer");
    return (await historyJobs(this.ctx.db, { status, limit: checkLimit(options.limit), offset, ...checkProvenance(options) })).map(toJob);
  }

  /** Every state change of a job, oldest first; kept after the job is archived. `null` if unknown. */
  async getJobEvents(id: string): Promise<JobEvent[] | null> {
    const job = await this.getJob(id);
    if (!job) return null;
    return buildTimeline(job, await storedEvents(this.ctx.db, id));
  }

  /** Lines the job's executors wrote with `ctx.log`, oldest first, after the line with id `after` (for following). */
  async getJobLogs(id: string, options: { after?: string; limit?: number } = {}): Promise<JobLogLine[]> {
    const after = options.after === undefined ? null : options.after;
    if (after !== null && !/^\d{1,18}$/.test(after)) throw new ValidationError("after", "must be a log line id");
    const rows = await readLogs(this.ctx.db, checkText(id, "id", LIMITS.idLength, false), after, checkLimit(options.limit ?? 1000));
    return rows.map((r) => ({ id: r.id, attempt: r.attempt, at: r.at, level: r.level, message: r.message, fields: r.fields }));
  }

  /** Finally failed jobs (the dead-letter queue), most recent first. */
  async listDeadLetters(options: { since?: Date | string; limit?: number } = {}): Promise<Job[]> {
    const since = options.since === undefined ? undefined : checkTime(options.since, "since");
    return (await deadLetters(this.ctx.db, { since, limit: checkLimit(options.limit) })).map(toJob);
  }
}
