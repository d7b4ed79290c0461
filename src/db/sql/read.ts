import type { Sql } from "../database";
import { HISTORY_COLUMNS, LIVE_COLUMNS, type JobRow } from "./rows";

/** The job with this id, live or archived. */
export async function findJob(sql: Sql, id: string): Promise<JobRow | undefined> {
  const rows = await sql.query<JobRow>(
    `SELECT ${LIVE_COLUMNS} FROM jobs j WHERE j.id = $1
     UNION ALL
     SELECT ${HISTORY_COLUMNS} FROM job_history h WHERE h.job_id = $1
     LIMIT 1`,
    [id],
  );
  return rows[0];
}

/** Pending jobs whose dependencies have all completed and whose run time has come, in claim order. */
export function readyJobs(sql: Sql, limit: number): Promise<JobRow[]> {
  return sql.query<JobRow>(
    `SELECT ${LIVE_COLUMNS} FROM jobs j
     WHERE j.status = 'pending' AND j.pending_dependencies = 0 AND j.run_at <= now()
     ORDER BY j.priority DESC, j.run_at, j.id
     LIMIT $1`,
    [limit],
  );
}

/** Live jobs, optionally of one status, newest first. */
export function liveJobs(sql: Sql, options: { status?: string; limit: number }): Promise<JobRow[]> {
  return sql.query<JobRow>(
    `SELECT ${LIVE_COLUMNS} FROM jobs j
     WHERE ($1::text IS NULL OR j.status = $1)
     ORDER BY j.created_at DESC, j.id
     LIMIT $2`,
    [options.status ?? null, options.limit],
  );
}

/** Archived jobs, optionally of one status, most recently finished first. */
export function historyJobs(sql: Sql, options: { status?: string; limit: number; offset?: number }): Promise<JobRow[]> {
  return sql.query<JobRow>(
    `SELECT ${HISTORY_COLUMNS} FROM job_history h
     WHERE ($1::text IS NULL OR h.status = $1)
     ORDER BY h.completed_at DESC, h.id DESC
     LIMIT $2 OFFSET $3`,
    [options.status ?? null, options.limit, options.offset ?? 0],
  );
}

/**
 * Deletes history rows that finished more than `days` days ago, with their
 * edges, events and log lines; returns how many jobs. Edges of live jobs are
 * never touched, so no live job's readiness changes.
 */
export async function pruneHistory(sql: Sql, days: number): Promise<number> {
  const rows = await sql.query<{ n: number }>(
    `WITH gone AS (
       DELETE FROM job_history WHERE completed_at < now() - make_interval(secs => $1::float8 * 86400) RETURNING job_id
     ), edges AS (
       DELETE FROM job_dependencies d USING gone g WHERE d.job_id = g.job_id
     ), events AS (
       DELETE FROM job_events e USING gone g WHERE e.job_id = g.job_id
     ), logs AS (
       DELETE FROM job_logs l USING gone g WHERE l.job_id = g.job_id
     )
     SELECT count(*)::int AS n FROM gone`,
    [days],
  );
  return rows[0]?.n ?? 0;
}

/**
 * Moves an archived failed or cancelled job back to `jobs` as pending, with
 * its retry count reset and the given count of unfinished dependencies.
 * Returns the live row, or undefined when the history row was not there.
 */
export async function restoreFromHistory(sql: Sql, id: string, pendingDependencies: number): Promise<JobRow | undefined> {
  const rows = await sql.query<JobRow>(
    `WITH h AS (
       DELETE FROM job_history WHERE job_id = $1 AND status IN ('failed', 'cancelled') RETURNING *
     ), ev AS (
       -- The archived row goes away: keep what it said as an event.
       INSERT INTO job_events (job_id, at, event, worker_id, attempt, detail)
       SELECT job_id, completed_at, status, locked_by, attempts,
         jsonb_build_object('error', error_message, 'startedAt', started_at, 'then', 'retried by request')
       FROM h
     ), j AS (
       INSERT INTO jobs (id, job_type, name, description, payload, dependencies, max_retries, retry_count,
         attempts, status, priority, run_at, pending_dependencies, queue, tenant, rate_limit_key,
         rate_limit_cost, concurrency_key, tags, timeout_seconds, parent_id, task_id, created_at, updated_at)
       SELECT job_id, job_type, name, description, payload, dependencies, max_retries, 0, attempts, 'pending',
         priority, now(), $2, queue, tenant, rate_limit_key, rate_limit_cost, concurrency_key, tags,
         timeout_seconds, parent_id, task_id, created_at, now()
       FROM h
       RETURNING *
     )
     SELECT ${LIVE_COLUMNS} FROM j`,
    [id, pendingDependencies],
  );
  return rows[0];
}
