import type { Sql } from "../database";
import { provenanceParams, provenanceWhere, type ProvenanceFilter, type ProvenanceParams } from "./read";
import { HISTORY_COLUMNS, LIVE_COLUMNS, type JobRow } from "./rows";
import { join, sql, statement, T, variants } from "./template";

/** Filters of the API's job list. */
export interface JobFilter extends ProvenanceFilter {
  status?: string;
  tenant?: string;
  queue?: string;
  limit: number;
}

type FilterParams = { status: string | null; tenant: string | null; queue: string | null; limit: number } & ProvenanceParams;

const filteredStatement = variants(
  (v: { live: boolean; archived: boolean }) => `${v.live ? "l" : ""}${v.archived ? "a" : ""}`,
  (v) =>
    statement<FilterParams, JobRow>((p) => {
      const parts = [];
      if (v.live) {
        parts.push(sql`(SELECT ${LIVE_COLUMNS}, j.updated_at AS sort_at FROM ${T.jobs} j
      WHERE (${p.status}::text IS NULL OR j.status = ${p.status}) AND (${p.tenant}::text IS NULL OR j.tenant = ${p.tenant})
        AND (${p.queue}::text IS NULL OR j.queue = ${p.queue}) AND ${provenanceWhere(p, "j")}
      ORDER BY j.updated_at DESC LIMIT ${p.limit})`);
      }
      if (v.archived) {
        parts.push(sql`(SELECT ${HISTORY_COLUMNS}, h.completed_at AS sort_at FROM ${T.job_history} h
      WHERE (${p.status}::text IS NULL OR h.status = ${p.status}) AND (${p.tenant}::text IS NULL OR h.tenant = ${p.tenant})
        AND (${p.queue}::text IS NULL OR h.queue = ${p.queue}) AND ${provenanceWhere(p, "h")}
      ORDER BY h.completed_at DESC LIMIT ${p.limit})`);
      }
      return sql`SELECT * FROM (${join(parts, " UNION ALL ")}) x ORDER BY sort_at DESC, id LIMIT ${p.limit}`;
    }),
);

/** Live and archived jobs matching a filter, most recently changed first. */
export function filteredJobs(db: Sql, f: JobFilter): Promise<JobRow[]> {
  const live = f.status === undefined || f.status === "pending" || f.status === "running";
  const archived = f.status === undefined || ["completed", "failed", "cancelled"].includes(f.status);
  if (!live && !archived) return Promise.resolve([]);
  return filteredStatement({ live, archived }).all(db, { status: f.status ?? null, tenant: f.tenant ?? null, queue: f.queue ?? null, limit: f.limit, ...provenanceParams(f) });
}

const ownedStatement = statement<{ ids: readonly string[]; tenant: string }, { id: string }>(
  (p) => sql`SELECT id FROM ${T.jobs} WHERE id = ANY(${p.ids}::text[]) AND tenant = ${p.tenant}
     UNION SELECT job_id FROM ${T.job_history} WHERE job_id = ANY(${p.ids}::text[]) AND tenant = ${p.tenant}`,
);

/** Of these ids, those of a job (live or archived) of `tenant`. */
export async function ownedIds(db: Sql, ids: readonly string[], tenant: string): Promise<string[]> {
  if (ids.length === 0) return [];
  return (await ownedStatement.all(db, { ids, tenant })).map((r) => r.id);
}

const foreignStatement = statement<{ ids: readonly string[]; tenant: string }, { id: string }>(
  (p) => sql`SELECT id FROM ${T.jobs} WHERE id = ANY(${p.ids}::text[]) AND tenant IS DISTINCT FROM ${p.tenant}
     UNION SELECT job_id FROM ${T.job_history} WHERE job_id = ANY(${p.ids}::text[]) AND tenant IS DISTINCT FROM ${p.tenant}`,
);

/** Of these ids, those that belong to a job of another tenant (or of none). */
export async function foreignJobIds(db: Sql, ids: readonly string[], tenant: string): Promise<string[]> {
  if (ids.length === 0) return [];
  return (await foreignStatement.all(db, { ids, tenant })).map((r) => r.id);
}

type TenantParam = { tenant: string | null };
const liveCountsStatement = statement<TenantParam, { status: string; n: number }>(
  (p) => sql`SELECT status, count(*)::int AS n FROM ${T.jobs} WHERE (${p.tenant}::text IS NULL OR tenant = ${p.tenant}) GROUP BY status`,
);
const historyCountsStatement = statement<TenantParam, { status: string; n: number }>(
  (p) => sql`SELECT status, count(*)::int AS n FROM ${T.job_history} WHERE (${p.tenant}::text IS NULL OR tenant = ${p.tenant}) GROUP BY status`,
);
const perMinuteStatement = statement<TenantParam, { minute: Date; completed: number; failed: number }>(
  (p) => sql`SELECT date_trunc('minute', completed_at) AS minute,
         count(*) FILTER (WHERE status = 'completed')::int AS completed, count(*) FILTER (WHERE status = 'failed')::int AS failed
       FROM ${T.job_history} WHERE completed_at > now() - interval '1 hour' AND (${p.tenant}::text IS NULL OR tenant = ${p.tenant})
       GROUP BY 1 ORDER BY 1`,
);

/** Counts for the dashboard: jobs by status and the last hour's throughput. */
export async function overview(db: Sql, tenant: string | null): Promise<{ counts: Record<string, number>; completedLastMinute: number; failedLastHour: number; perMinute: Array<{ minute: Date; completed: number; failed: number }> }> {
  const [live, history, recent] = await Promise.all([liveCountsStatement.all(db, { tenant }), historyCountsStatement.all(db, { tenant }), perMinuteStatement.all(db, { tenant })]);
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

const throughputStatement = statement<{ tenant: string | null; minutes: number }, { minute: Date; completed: number; failed: number; cancelled: number }>(
  (p) => sql`SELECT date_trunc('minute', completed_at) AS minute,
         count(*) FILTER (WHERE status = 'completed')::int AS completed, count(*) FILTER (WHERE status = 'failed')::int AS failed,
         count(*) FILTER (WHERE status = 'cancelled')::int AS cancelled
       FROM ${T.job_history}
       WHERE completed_at > date_trunc('minute', now()) - make_interval(mins => ${p.minutes}) AND (${p.tenant}::text IS NULL OR tenant = ${p.tenant})
       GROUP BY 1 ORDER BY 1`,
);

/** Jobs finished per minute over the last `minutes` (the minutes with none are left out). */
export function throughput(db: Sql, tenant: string | null, minutes: number): Promise<Array<{ minute: Date; completed: number; failed: number; cancelled: number }>> {
  return throughputStatement.all(db, { tenant, minutes });
}

const countsByQueueStatement = statement<Record<string, never>, { status: string; queue: string; n: number }>(
  () => sql`SELECT status, queue, count(*)::int AS n FROM ${T.jobs} GROUP BY 1, 2
     UNION ALL SELECT status, queue, count(*)::int FROM ${T.job_history} GROUP BY 1, 2`,
);

/** Per-status, per-queue counts of live jobs and archived jobs (for /metrics). */
export function jobCountsByQueue(db: Sql): Promise<Array<{ status: string; queue: string; n: number }>> {
  return countsByQueueStatement.all(db, {});
}

const eventCountsStatement = statement<Record<string, never>, { event: string; n: number }>(
  () => sql`SELECT event, count(*)::int AS n FROM ${T.job_events} GROUP BY 1`,
);

/** Counts of stored events by kind (retries, lease losses, rate-limit waits) for /metrics. */
export function eventCounts(db: Sql): Promise<Array<{ event: string; n: number }>> {
  return eventCountsStatement.all(db, {});
}

/** A worker as the API lists it. */
export interface WorkerRow {
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  status: string;
  queues: string[] | null;
  tags: string[];
  tenants: string[] | null;
  requested_state: string | null;
  requested_concurrency: number | null;
  started_at: Date;
  last_heartbeat_at: Date;
  running: number;
}

const workerRowsStatement = statement<Record<string, never>, WorkerRow>(
  () => sql`SELECT w.id, w.host, w.pid, w.concurrency, w.status, w.queues, w.tags, w.tenants, w.requested_state, w.requested_concurrency,
       w.started_at, w.last_heartbeat_at,
       (SELECT count(*)::int FROM ${T.jobs} j WHERE j.status = 'running' AND j.locked_by = w.id) AS running
     FROM ${T.workers} w ORDER BY w.started_at`,
);

/** Live workers. */
export function workerRows(db: Sql): Promise<WorkerRow[]> {
  return workerRowsStatement.all(db, {});
}

const tenantDeadLettersStatement = statement<{ tenant: string | null; since: Date | null; limit: number }, JobRow>(
  (p) => sql`SELECT ${HISTORY_COLUMNS} FROM ${T.job_history} h WHERE h.status = 'failed' AND (${p.tenant}::text IS NULL OR h.tenant = ${p.tenant})
       AND (${p.since}::timestamptz IS NULL OR h.completed_at >= ${p.since}) ORDER BY h.completed_at DESC LIMIT ${p.limit}`,
);

/** Finally failed jobs of a tenant (or all). */
export function tenantDeadLetters(db: Sql, tenant: string | null, since: Date | null, limit: number): Promise<JobRow[]> {
  return tenantDeadLettersStatement.all(db, { tenant, since, limit });
}
