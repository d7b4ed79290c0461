import type { Sql } from "../database";
import { READY_CHANNEL } from "./insert";
import { filterCondition, type WorkerFilter } from "./limits";
import { archiveInsert, leaseTokens, LIVE_COLUMNS, type JobRow } from "./rows";

/** What one claim statement got, and whether jobs needing the flow-control claim wait. */
export interface Claimed {
  rows: JobRow[];
  /** Ready jobs with a tenant, a rate-limit key or a concurrency key wait for this worker. */
  flowWaiting: boolean;
}

/** What a worker asks for when it claims. */
export interface ClaimRequest {
  workerId: string;
  /** Free slots: the most jobs to take. */
  limit: number;
  /** Lease length in seconds; the worker renews it with heartbeats. */
  leaseSeconds: number;
  /** The worker's queues and tags. @defaultValue every queue, no tags */
  filter?: WorkerFilter;
  /**
   * A claim ahead of free slots (`prefetch`): leaves out delegated children,
   * which their waiting parent (maybe on another worker) must be able to claim
   * by id and run in its own slot.
   */
  ahead?: boolean;
}

/**
 * The jobs the plain claim takes: ready and due, of the group '' of
 * jobs_ready_idx, without a rate-limit or concurrency key (the flow-control
 * claim takes those). A completion's handoff (./handoff.ts) uses it too.
 */
export const PLAIN_READY = `status = 'pending' AND pending_dependencies = 0 AND COALESCE(tenant, '') = '' AND run_at <= now()
         AND rate_limit_key IS NULL AND concurrency_key IS NULL`;

/** Rows in the plain claim's order: highest priority first, then earliest run time, then id. */
export function byClaimOrder(a: JobRow, b: JobRow): number {
  return b.priority - a.priority || a.run_at.getTime() - b.run_at.getTime() || (a.id < b.id ? -1 : 1);
}

/**
 * Claims up to `limit` ready jobs in one statement: highest priority first,
 * then earliest run time. The CTE is materialised on purpose: it is an
 * optimisation fence, so PostgreSQL evaluates LIMIT ... FOR UPDATE SKIP LOCKED
 * once over the readiness index (jobs_ready_idx) instead of re-planning it
 * as a join that could lock more rows than it returns. SKIP LOCKED lets
 * concurrent workers take disjoint sets without waiting on each other.
 *
 * This is the fast path for plain jobs: no tenant, no rate-limit key, no
 * concurrency key (the group '' of jobs_ready_idx, read in claim order). Jobs
 * that use those features are claimed by the flow-control claim
 * (src/limits/claim.ts), which enforces the limits.
 */
export async function claimJobs(sql: Sql, request: ClaimRequest): Promise<Claimed> {
  const where = filterCondition(request.filter ?? { queues: null, tags: [] }, "jobs", 5);
  const out = await sql.query<JobRow & { flow_waiting: boolean }>(
    `WITH candidates AS MATERIALIZED (
       SELECT id FROM jobs
       WHERE ${PLAIN_READY}${request.ahead === true ? " AND parent_id IS NULL" : ""}${where.sql}
       ORDER BY priority DESC, run_at, id
       LIMIT $2
       FOR UPDATE SKIP LOCKED
     ), numbered AS (
       SELECT id, row_number() OVER () AS n FROM candidates
     ), j AS (
       UPDATE jobs SET status = 'running', locked_by = $1, lease_token = ($4::uuid[])[c.n],
         lease_expires_at = now() + make_interval(secs => $3), started_at = now(),
         attempts = attempts + 1, updated_at = now()
       FROM numbered c WHERE jobs.id = c.id
       RETURNING jobs.*
     )
     -- One probe of jobs_ready_flow_idx (empty when flow control is unused):
     -- tells the worker to switch to the flow-control claim next round. A
     -- claim that gets nothing still returns one row, with the flag alone.
     SELECT ${LIVE_COLUMNS}, f.flow_waiting FROM (SELECT EXISTS (
       SELECT 1 FROM jobs WHERE status = 'pending' AND pending_dependencies = 0
         AND (tenant IS NOT NULL OR rate_limit_key IS NOT NULL OR concurrency_key IS NOT NULL)
         AND run_at <= now()${where.sql}
     ) AS flow_waiting) f
     LEFT JOIN j ON true`,
    [request.workerId, request.limit, request.leaseSeconds, leaseTokens(request.limit), ...where.params],
    { prepare: true },
  );
  const flowWaiting = out[0]?.flow_waiting === true;
  const rows: JobRow[] = out.filter((r) => r.id !== null);
  return { flowWaiting, rows: rows.sort(byClaimOrder) };
}

/** Extends the leases a worker still holds; returns the ids whose lease it still holds. */
export async function renewLeases(sql: Sql, workerId: string, leaseTokens: readonly string[], leaseSeconds: number): Promise<string[]> {
  if (leaseTokens.length === 0) return [];
  const rows = await sql.query<{ lease_token: string }>(
    `UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $3)
     WHERE locked_by = $1 AND status = 'running'
       AND lease_token = ANY($2::uuid[])
     RETURNING lease_token`,
    [workerId, leaseTokens, leaseSeconds],
  );
  return rows.map((r) => r.lease_token);
}

/**
 * Returns running jobs to pending without using a retry (graceful shutdown
 * gave up on them). Only jobs whose lease still matches are touched. With
 * `started: false` (claimed but never handed to an executor), the claim's
 * attempt is not counted either. Workers are told that jobs are ready (at
 * commit), so another one takes them at once, not at its next poll.
 */
export async function releaseJobs(
  sql: Sql,
  leases: ReadonlyArray<{ id: string; leaseToken: string }>,
  reason: string,
  options: { started?: boolean } = {},
): Promise<string[]> {
  if (leases.length === 0) return [];
  const rows = await sql.query<{ id: string }>(
    `WITH before AS (
       SELECT j.id, j.locked_by, j.attempts, j.started_at FROM jobs j
       JOIN jsonb_to_recordset($1::jsonb) AS x(id text, lease_token uuid) ON j.id = x.id AND j.lease_token = x.lease_token
       WHERE j.status = 'running'
     ), u AS (
       UPDATE jobs j SET status = 'pending', locked_by = NULL, lease_token = NULL, lease_expires_at = NULL,
         error_message = $2, run_at = now(), updated_at = now(),
         attempts = CASE WHEN $3::boolean THEN j.attempts ELSE j.attempts - 1 END,
         started_at = CASE WHEN $3::boolean THEN j.started_at ELSE NULL END
       FROM before b, jsonb_to_recordset($1::jsonb) AS x(id text, lease_token uuid)
       -- The lease is checked again here: a row lock waited for re-checks only this WHERE.
       WHERE j.id = b.id AND x.id = b.id AND j.lease_token = x.lease_token AND j.status = 'running'
       RETURNING j.id
     ), ev AS (
       INSERT INTO job_events (job_id, event, worker_id, attempt, detail)
       SELECT b.id, 'released', b.locked_by, b.attempts, jsonb_build_object('reason', $2::text, 'startedAt', b.started_at)
       FROM before b JOIN u ON u.id = b.id
     )
     -- One notification however many rows: PostgreSQL folds identical ones of a transaction.
     SELECT id, pg_notify($4, '') IS NULL AS quiet FROM u`,
    [JSON.stringify(leases.map((l) => ({ id: l.id, lease_token: l.leaseToken }))), reason, options.started !== false, READY_CHANNEL],
  );
  return rows.map((r) => r.id);
}

/**
 * Jobs whose lease expired (their worker died or hung) count a failed attempt:
 * back to pending while retries are left. Returns the ids retried.
 */
export async function retryExpiredLeases(sql: Sql, batch: number): Promise<string[]> {
  const rows = await sql.query<{ id: string }>(
    `WITH expired AS MATERIALIZED (
       SELECT id FROM jobs
       WHERE status = 'running' AND lease_expires_at < now() AND retry_count < max_retries
       ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
     )
     , before AS (
       SELECT j.id, j.locked_by, j.attempts, j.started_at FROM jobs j JOIN expired e ON e.id = j.id
     ), u AS (
       UPDATE jobs j SET status = 'pending', retry_count = j.retry_count + 1,
         error_message = format('lease expired: worker %s stopped renewing it', j.locked_by),
         locked_by = NULL, lease_token = NULL, lease_expires_at = NULL, run_at = now(), updated_at = now()
       FROM expired e WHERE j.id = e.id
       RETURNING j.id
     ), ev AS (
       INSERT INTO job_events (job_id, event, worker_id, attempt, detail)
       SELECT b.id, 'lease_lost', b.locked_by, b.attempts, jsonb_build_object('startedAt', b.started_at, 'then', 'retried')
       FROM before b JOIN u ON u.id = b.id
     )
     SELECT id FROM u`,
    [batch],
  );
  return rows.map((r) => r.id);
}

/** Jobs whose lease expired with no retries left end failed. Returns the ids archived. */
export async function failExpiredLeases(sql: Sql, batch: number): Promise<string[]> {
  const rows = await sql.query<{ id: string }>(
    `WITH expired AS MATERIALIZED (
       SELECT id FROM jobs
       WHERE status = 'running' AND lease_expires_at < now() AND retry_count >= max_retries
       ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
     ), done AS (
       DELETE FROM jobs j USING expired e WHERE j.id = e.id RETURNING j.*
     ), ev AS (
       INSERT INTO job_events (job_id, event, worker_id, attempt, detail)
       SELECT d.id, 'lease_lost', d.locked_by, d.attempts, jsonb_build_object('startedAt', d.started_at, 'then', 'failed')
       FROM done d
     ), archived AS (
       ${archiveInsert("done", "'failed'", "format('lease expired: worker %s stopped renewing it', s.locked_by)", "NULL")}
       RETURNING job_id
     )
     SELECT job_id AS id FROM archived`,
    [batch],
  );
  return rows.map((r) => r.id);
}

/**
 * Claims one job by id if it is ready and this worker may run it: used by a
 * parent that waits on a child it delegated, to run the child within its own
 * slot. Jobs with a rate-limit or concurrency key are never claimed this way
 * (the flow-control claim enforces their limits).
 */
export async function claimById(sql: Sql, request: Omit<ClaimRequest, "limit"> & { id: string }): Promise<JobRow | undefined> {
  const where = filterCondition(request.filter ?? { queues: null, tags: [] }, "jobs", 5);
  const rows = await sql.query<JobRow>(
    `WITH candidate AS MATERIALIZED (
       SELECT id FROM jobs
       WHERE id = $2 AND status = 'pending' AND pending_dependencies = 0 AND run_at <= now()
         AND rate_limit_key IS NULL AND concurrency_key IS NULL${where.sql}
       FOR UPDATE SKIP LOCKED
     ), j AS (
       UPDATE jobs SET status = 'running', locked_by = $1, lease_token = $4::uuid,
         lease_expires_at = now() + make_interval(secs => $3), started_at = now(),
         attempts = attempts + 1, updated_at = now()
       FROM candidate c WHERE jobs.id = c.id
       RETURNING jobs.*
     )
     SELECT ${LIVE_COLUMNS} FROM j`,
    [request.workerId, request.id, request.leaseSeconds, leaseTokens(1)[0], ...where.params],
  );
  return rows[0];
}
