import type { Sql } from "../database";
import { claimOrder, ready } from "./fragments";
import { HISTORY_COLUMNS, LIVE_COLUMNS, streamEvents, type JobRow } from "./rows";
import { ident, sql, statement, T, type Fragment, type Params } from "./template";

/** Where jobs came from, for listings: their name, schedule, parent and creation time. */
export interface ProvenanceFilter {
  name?: string;
  scheduleName?: string;
  parentId?: string;
  createdAfter?: Date;
  createdBefore?: Date;
}
/** {@link ProvenanceFilter} as statement parameters (null: no filter). */
export type ProvenanceParams = { name: string | null; scheduleName: string | null; parentId: string | null; createdAfter: Date | null; createdBefore: Date | null };

/** The parameters of a {@link ProvenanceFilter}. */
export function provenanceParams(f: ProvenanceFilter): ProvenanceParams {
  return { name: f.name ?? null, scheduleName: f.scheduleName ?? null, parentId: f.parentId ?? null, createdAfter: f.createdAfter ?? null, createdBefore: f.createdBefore ?? null };
}

/** The conditions of a {@link ProvenanceFilter} on a job row of alias `a` (live or archived). */
export function provenanceWhere(p: Params<ProvenanceParams>, a: "j" | "h"): Fragment {
  const col = (name: string) => ident(`${a}.${name}`);
  return sql`(${p.name}::text IS NULL OR ${col("name")} = ${p.name})
       AND (${p.scheduleName}::text IS NULL OR ${col("schedule_name")} = ${p.scheduleName})
       AND (${p.parentId}::text IS NULL OR ${col("parent_id")} = ${p.parentId})
       AND (${p.createdAfter}::timestamptz IS NULL OR ${col("created_at")} > ${p.createdAfter})
       AND (${p.createdBefore}::timestamptz IS NULL OR ${col("created_at")} < ${p.createdBefore})`;
}

const findJobStatement = statement<{ id: string }, JobRow>(
  (p) => sql`SELECT ${LIVE_COLUMNS} FROM ${T.jobs} j WHERE j.id = ${p.id}
     UNION ALL
     SELECT ${HISTORY_COLUMNS} FROM ${T.job_history} h WHERE h.job_id = ${p.id}
     LIMIT 1`,
);

/** The job with this id, live or archived. */
export function findJob(db: Sql, id: string): Promise<JobRow | undefined> {
  return findJobStatement.one(db, { id });
}

const readyJobsStatement = statement<{ limit: number }, JobRow>(
  (p) => sql`SELECT ${LIVE_COLUMNS} FROM ${T.jobs} j
     WHERE ${ready("j")} AND j.run_at <= now()
     ORDER BY ${claimOrder("j")}
     LIMIT ${p.limit}`,
);

/** Pending jobs whose dependencies have all completed and whose run time has come, in claim order. */
export function readyJobs(db: Sql, limit: number): Promise<JobRow[]> {
  return readyJobsStatement.all(db, { limit });
}

const liveJobsStatement = statement<{ status: string | null; limit: number } & ProvenanceParams, JobRow>(
  (p) => sql`SELECT ${LIVE_COLUMNS} FROM ${T.jobs} j
     WHERE (${p.status}::text IS NULL OR j.status = ${p.status}) AND ${provenanceWhere(p, "j")}
     ORDER BY j.created_at DESC, j.id
     LIMIT ${p.limit}`,
);

/** Live jobs, optionally of one status and provenance, newest first. */
export function liveJobs(db: Sql, options: { status?: string; limit: number } & ProvenanceFilter): Promise<JobRow[]> {
  return liveJobsStatement.all(db, { status: options.status ?? null, limit: options.limit, ...provenanceParams(options) });
}

const historyJobsStatement = statement<{ status: string | null; limit: number; offset: number } & ProvenanceParams, JobRow>(
  (p) => sql`SELECT ${HISTORY_COLUMNS} FROM ${T.job_history} h
     WHERE (${p.status}::text IS NULL OR h.status = ${p.status}) AND ${provenanceWhere(p, "h")}
     ORDER BY h.completed_at DESC, h.id DESC
     LIMIT ${p.limit} OFFSET ${p.offset}`,
);

/** Archived jobs, optionally of one status and provenance, most recently finished first. */
export function historyJobs(db: Sql, options: { status?: string; limit: number; offset?: number } & ProvenanceFilter): Promise<JobRow[]> {
  return historyJobsStatement.all(db, { status: options.status ?? null, limit: options.limit, offset: options.offset ?? 0, ...provenanceParams(options) });
}

const pruneStatement = statement<{ days: number }, { n: number }>(
  (p) => sql`WITH gone AS (
       DELETE FROM ${T.job_history} WHERE completed_at < now() - make_interval(secs => ${p.days}::float8 * 86400) RETURNING job_id
     ), edges AS (
       DELETE FROM ${T.job_dependencies} d USING gone g WHERE d.job_id = g.job_id
     ), events AS (
       DELETE FROM ${T.job_events} e USING gone g WHERE e.job_id = g.job_id
     ), logs AS (
       DELETE FROM ${T.job_logs} l USING gone g WHERE l.job_id = g.job_id
     ), stream AS (
       DELETE FROM ${T.stream_events} s USING gone g WHERE s.job_id = g.job_id
     ), steps AS (
       DELETE FROM ${T.job_steps} s USING gone g WHERE s.job_id = g.job_id
     )
     SELECT count(*)::int AS n FROM gone`,
);

/**
 * Deletes history rows that finished more than `days` days ago, with their
 * edges, events, stream events and log lines; returns how many jobs. Edges of live jobs are
 * never touched, so no live job's readiness changes.
 */
export async function pruneHistory(db: Sql, days: number): Promise<number> {
  return (await pruneStatement.one(db, { days }))?.n ?? 0;
}

const restoreStatement = statement<{ id: string; pending: number }, JobRow>(
  (p) => sql`WITH h AS (
       DELETE FROM ${T.job_history} WHERE job_id = ${p.id} AND status IN ('failed', 'cancelled') RETURNING *
     ), ev AS (
       -- The archived row goes away: keep what it said as an event.
       INSERT INTO ${T.job_events} (job_id, at, event, worker_id, attempt, detail)
       SELECT job_id, completed_at, status, locked_by, attempts,
         jsonb_build_object('error', error_message, 'startedAt', started_at, 'then', 'retried by request')
       FROM h
     ), j AS (
       INSERT INTO ${T.jobs} (id, job_type, name, description, payload, dependencies, max_retries, retry_count,
         attempts, status, priority, run_at, pending_dependencies, queue, tenant, rate_limit_key,
         rate_limit_cost, concurrency_key, tags, timeout_seconds, parent_id, task_id, created_at, updated_at,
         delegation_key, detached, schedule_name, scheduled_for)
       SELECT job_id, job_type, name, description, payload, dependencies, max_retries, 0, attempts, 'pending',
         priority, now(), ${p.pending}, queue, tenant, rate_limit_key, rate_limit_cost, concurrency_key, tags,
         timeout_seconds, parent_id, task_id, created_at, now(), delegation_key, detached, schedule_name, scheduled_for
       FROM h
       RETURNING *
     ), se AS (
       ${streamEvents("j", sql`'pending'`, sql`e.attempts`)}
     )
     SELECT ${LIVE_COLUMNS} FROM j`,
);

/**
 * Moves an archived failed or cancelled job back to `jobs` as pending, with
 * its retry count reset and the given count of unfinished dependencies.
 * Returns the live row, or undefined when the history row was not there.
 */
export function restoreFromHistory(db: Sql, id: string, pendingDependencies: number): Promise<JobRow | undefined> {
  return restoreStatement.one(db, { id, pending: pendingDependencies });
}
