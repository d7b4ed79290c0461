import type { Sql } from "../database";
import { HISTORY_COLUMNS, LIVE_COLUMNS, type JobRow } from "./rows";

/** Filters of the API's job list. */
export interface JobFilter {
  status?: string;
  tenant?: string;
  queue?: string;
  limit: number;
}

/** Live and archived jobs matching a filter, most recently changed first. */
export function filteredJobs(sql: Sql, f: JobFilter): Promise<JobRow[]> {
  const live = f.status === undefined || f.status === "pending" || f.status === "running";
  const archived = f.status === undefined || ["completed", "failed", "cancelled"].includes(f.status);
  const parts: string[] = [];
  if (live) {
    parts.push(`(SELECT ${LIVE_COLUMNS}, j.updated_at AS sort_at FROM jobs j
      WHERE ($1::text IS NULL OR j.status = $1) AND ($2::text IS NULL OR j.tenant = $2) AND ($3::text IS NULL OR j.queue = $3)
      ORDER BY j.updated_at DESC LIMIT $4)`);
  }
  if (archived) {
    parts.push(`(SELECT ${HISTORY_COLUMNS}, h.completed_at AS sort_at FROM job_history h
      WHERE ($1::text IS NULL OR h.status = $1) AND ($2::text IS NULL OR h.tenant = $2) AND ($3::text IS NULL OR h.queue = $3)
      ORDER BY h.completed_at DESC LIMIT $4)`);
  }
  return sql.query<JobRow>(`SELECT * FROM (${parts.join(" UNION ALL ")}) x ORDER BY sort_at DESC, id LIMIT $4`, [f.status ?? null, f.tenant ?? null, f.queue ?? null, f.limit]);
}

/** The tenant of a job, live or archived (undefined: no such job; null: no tenant). */
export async function tenantOf(sql: Sql, id: string): Promise<string | null | undefined> {
  const rows = await sql.query<{ tenant: string | null }>(
    `SELECT tenant FROM jobs WHERE id = $1 UNION ALL SELECT tenant FROM job_history WHERE job_id = $1 LIMIT 1`,
    [id],
  );
  return rows.length === 0 ? undefined : rows[0].tenant;
}

/** Of these ids, those that belong to a job of another tenant (or of none). */
export async function foreignJobIds(sql: Sql, ids: readonly string[], tenant: string): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await sql.query<{ id: string }>(
    `SELECT id FROM jobs WHERE id = ANY($1::text[]) AND tenant IS DISTINCT FROM $2
     UNION SELECT job_id FROM job_history WHERE job_id = ANY($1::text[]) AND tenant IS DISTINCT FROM $2`,
    [ids, tenant],
  );
  return rows.map((r) => r.id);
}

/** Counts for the dashboard: jobs by status and the last hour's throughput. */
export async function overview(sql: Sql, tenant: string | null): Promise<{ counts: Record<string, number>; completedLastMinute: number; failedLastHour: number; perMinute: Array<{ minute: Date; completed: number; failed: number }> }> {
  const [live, history, recent] = await Promise.all([
    sql.query<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM jobs WHERE ($1::text IS NULL OR tenant = $1) GROUP BY status`, [tenant]),
    sql.query<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM job_history WHERE ($1::text IS NULL OR tenant = $1) GROUP BY status`, [tenant]),
    sql.query<{ minute: Date; completed: number; failed: number }>(
      `SELECT date_trunc('minute', completed_at) AS minute,
         count(*) FILTER (WHERE status = 'completed')::int AS completed, count(*) FILTER (WHERE status = 'failed')::int AS failed
       FROM job_history WHERE completed_at > now() - interval '1 hour' AND ($1::text IS NULL OR tenant = $1)
       GROUP BY 1 ORDER BY 1`,
      [tenant],
    ),
  ]);
  const counts: Record<string, number> = { pending: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
  for (const r of [...live, ...history]) counts[r.status] = (counts[r.status] ?? 0) + r.n;
  const now = Date.now();
  return {
    counts,
    completedLastMinute: recent.filter((r) => now - r.minute.getTime() < 120_000).reduce((n, r) => n + r.completed, 0),
    failedLastHour: recent.reduce((n, r) => n + r.failed, 0),
    perMinute: recent,
  };
}

/** Jobs changed after a cursor (for the tenant event stream): id, status, when. */
export function changedSince(sql: Sql, tenant: string | null, after: Date, limit: number): Promise<Array<{ id: string; name: string; status: string; at: Date }>> {
  return sql.query(
    `SELECT * FROM (
       SELECT id, name, status, updated_at AS at FROM jobs WHERE updated_at > $2 AND ($1::text IS NULL OR tenant = $1)
       UNION ALL
       SELECT job_id, name, status, completed_at FROM job_history WHERE completed_at > $2 AND ($1::text IS NULL OR tenant = $1)
     ) c ORDER BY at, id LIMIT $3`,
    [tenant, after, limit],
  );
}

/** Per-status, per-queue counts of live jobs and archived jobs (for /metrics). */
export function jobCountsByQueue(sql: Sql): Promise<Array<{ status: string; queue: string; n: number }>> {
  return sql.query(
    `SELECT status, queue, count(*)::int AS n FROM jobs GROUP BY 1, 2
     UNION ALL SELECT status, queue, count(*)::int FROM job_history GROUP BY 1, 2`,
  );
}

/** Counts of stored events by kind (retries, lease losses, rate-limit waits) for /metrics. */
export function eventCounts(sql: Sql): Promise<Array<{ event: string; n: number }>> {
  return sql.query(`SELECT event, count(*)::int AS n FROM job_events GROUP BY 1`);
}

/** Live workers. */
export function workerRows(sql: Sql): Promise<Array<{ id: string; host: string; pid: number; concurrency: number; status: string; queues: string[] | null; tags: string[]; started_at: Date; last_heartbeat_at: Date; running: number }>> {
  return sql.query(
    `SELECT w.id, w.host, w.pid, w.concurrency, w.status, w.queues, w.tags, w.started_at, w.last_heartbeat_at,
       (SELECT count(*)::int FROM jobs j WHERE j.status = 'running' AND j.locked_by = w.id) AS running
     FROM workers w ORDER BY w.started_at`,
  );
}

/** Finally failed jobs of a tenant (or all). */
export function tenantDeadLetters(sql: Sql, tenant: string | null, since: Date | null, limit: number): Promise<JobRow[]> {
  return sql.query<JobRow>(
    `SELECT ${HISTORY_COLUMNS} FROM job_history h WHERE h.status = 'failed' AND ($1::text IS NULL OR h.tenant = $1)
       AND ($2::timestamptz IS NULL OR h.completed_at >= $2) ORDER BY h.completed_at DESC LIMIT $3`,
    [tenant, since, limit],
  );
}
