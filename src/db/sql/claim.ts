import type { Sql } from "../database";
import { claimOrder, filterValues, flowReady, plainReady, shapeKey, shapeOf, workerFilter, type FilterShape, type WorkerFilter } from "./fragments";
import { archiveInsert, leaseSet, leaseTokens, LIVE_COLUMNS, streamEvents, type JobRow, type LeaseParams } from "./rows";
import { CHANNEL, sql, statement, T, variants } from "./template";

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
}

const EVERYTHING: WorkerFilter = { queues: null, tags: [] };

/** Rows in the plain claim's order: highest priority first, then earliest run time, then id. */
export function byClaimOrder(a: JobRow, b: JobRow): number {
  return b.priority - a.priority || a.run_at.getTime() - b.run_at.getTime() || (a.id < b.id ? -1 : 1);
}

type ClaimParams = LeaseParams & WorkerFilter & { limit: number; tokens: string[] };

/**
 * The plain claim, one statement. The CTE is materialised on purpose: it is
 * an optimisation fence, so PostgreSQL evaluates LIMIT ... FOR UPDATE SKIP
 * LOCKED once over the readiness index (jobs_ready_idx) instead of re-planning
 * it as a join that could lock more rows than it returns. SKIP LOCKED lets
 * concurrent workers take disjoint sets without waiting on each other. One
 * probe of jobs_ready_flow_idx (empty when flow control is unused) tells the
 * worker to switch to the flow-control claim; a claim that gets nothing still
 * returns one row, with that flag alone.
 */
const claimStatement = variants(
  (v: FilterShape) => shapeKey(v),
  (v) =>
    statement<ClaimParams, JobRow & { flow_waiting: boolean }>(
      (p) => sql`WITH candidates AS MATERIALIZED (
       SELECT j.id FROM ${T.jobs} j
       WHERE ${plainReady("j")}${workerFilter(p, "j", v)}
       ORDER BY ${claimOrder("j")}
       LIMIT ${p.limit}
       FOR UPDATE SKIP LOCKED
     ), numbered AS (
       SELECT id, row_number() OVER () AS n FROM candidates
     ), j AS (
       UPDATE ${T.jobs} t SET ${leaseSet(p, "t", sql`(${p.tokens}::uuid[])[c.n]`)}
       FROM numbered c WHERE t.id = c.id
       RETURNING t.*
     ), se AS (
       ${streamEvents("j", sql`'running'`, sql`e.attempts`)}
     )
     SELECT ${LIVE_COLUMNS}, f.flow_waiting FROM (SELECT EXISTS (
       SELECT 1 FROM ${T.jobs} w WHERE ${flowReady("w")}${workerFilter(p, "w", v)}
     ) AS flow_waiting) f
     LEFT JOIN j ON true`,
      { prepare: true },
    ),
);

/**
 * Claims up to `limit` ready plain jobs (no tenant, no rate-limit key, no
 * concurrency key) in one statement, in claim order. Jobs that use those
 * features are claimed by the flow-control claim (src/limits/claim.ts),
 * which enforces the limits.
 */
export async function claimJobs(db: Sql, request: ClaimRequest): Promise<Claimed> {
  const filter = request.filter ?? EVERYTHING;
  const out = await claimStatement(shapeOf(filter)).all(db, {
    workerId: request.workerId,
    limit: request.limit,
    leaseSeconds: request.leaseSeconds,
    tokens: leaseTokens(request.limit),
    ...filterValues(filter),
  });
  const flowWaiting = out[0]?.flow_waiting === true;
  const rows: JobRow[] = out.filter((r) => r.id !== null);
  return { flowWaiting, rows: rows.sort(byClaimOrder) };
}

const renewStatement = statement<{ workerId: string; tokens: readonly string[]; leaseSeconds: number }, { lease_token: string }>(
  (p) => sql`UPDATE ${T.jobs} j SET lease_expires_at = now() + make_interval(secs => ${p.leaseSeconds})
     WHERE j.locked_by = ${p.workerId} AND j.status = 'running' AND j.lease_token = ANY(${p.tokens}::uuid[])
     RETURNING j.lease_token`,
);

/** Extends the leases a worker still holds; returns the lease tokens it still holds. */
export async function renewLeases(db: Sql, workerId: string, tokens: readonly string[], leaseSeconds: number): Promise<string[]> {
  if (tokens.length === 0) return [];
  return (await renewStatement.all(db, { workerId, tokens, leaseSeconds })).map((r) => r.lease_token);
}

const releaseStatement = statement<{ leases: string; reason: string; started: boolean }, { id: string }>(
  (p) => sql`WITH before AS (
       SELECT j.id, j.locked_by, j.attempts, j.started_at FROM ${T.jobs} j
       JOIN jsonb_to_recordset(${p.leases}::jsonb) AS x(id text, lease_token uuid) ON j.id = x.id AND j.lease_token = x.lease_token
       WHERE j.status = 'running'
     ), u AS (
       UPDATE ${T.jobs} j SET status = 'pending', locked_by = NULL, lease_token = NULL, lease_expires_at = NULL,
         error_message = ${p.reason}, run_at = now(), updated_at = now(),
         attempts = CASE WHEN ${p.started}::boolean THEN j.attempts ELSE j.attempts - 1 END,
         started_at = CASE WHEN ${p.started}::boolean THEN j.started_at ELSE NULL END
       FROM before b, jsonb_to_recordset(${p.leases}::jsonb) AS x(id text, lease_token uuid)
       -- The lease is checked again here: a row lock waited for re-checks only this WHERE.
       WHERE j.id = b.id AND x.id = b.id AND j.lease_token = x.lease_token AND j.status = 'running'
       RETURNING j.id, j.tenant, j.name, j.attempts
     ), se AS (
       ${streamEvents("u", sql`'pending'`, sql`e.attempts`)}
     ), ev AS (
       INSERT INTO ${T.job_events} (job_id, event, worker_id, attempt, detail)
       SELECT b.id, 'released', b.locked_by, b.attempts, jsonb_build_object('reason', ${p.reason}::text, 'startedAt', b.started_at)
       FROM before b JOIN u ON u.id = b.id
     )
     -- One notification however many rows: PostgreSQL folds identical ones of a transaction.
     SELECT id, pg_notify(${CHANNEL.ready}, '') IS NULL AS quiet FROM u`,
);

/**
 * Returns running jobs to pending without using a retry (graceful shutdown
 * gave up on them). Only jobs whose lease still matches are touched. With
 * `started: false` (claimed but never handed to an executor), the claim's
 * attempt is not counted either. Workers are told that jobs are ready (at
 * commit), so another one takes them at once, not at its next poll.
 */
export async function releaseJobs(
  db: Sql,
  leases: ReadonlyArray<{ id: string; leaseToken: string }>,
  reason: string,
  options: { started?: boolean } = {},
): Promise<string[]> {
  if (leases.length === 0) return [];
  const rows = await releaseStatement.all(db, {
    leases: JSON.stringify(leases.map((l) => ({ id: l.id, lease_token: l.leaseToken }))),
    reason,
    started: options.started !== false,
  });
  return rows.map((r) => r.id);
}

const LEASE_EXPIRED = sql`format('lease expired: worker %s stopped renewing it', j.locked_by)`;

const retryExpiredStatement = statement<{ batch: number }, { id: string }>(
  (p) => sql`WITH expired AS MATERIALIZED (
       SELECT id FROM ${T.jobs}
       WHERE status = 'running' AND lease_expires_at < now() AND retry_count < max_retries
       ORDER BY id LIMIT ${p.batch} FOR UPDATE SKIP LOCKED
     ), before AS (
       SELECT j.id, j.locked_by, j.attempts, j.started_at FROM ${T.jobs} j JOIN expired e ON e.id = j.id
     ), u AS (
       UPDATE ${T.jobs} j SET status = 'pending', retry_count = j.retry_count + 1, error_message = ${LEASE_EXPIRED},
         locked_by = NULL, lease_token = NULL, lease_expires_at = NULL, run_at = now(), updated_at = now()
       FROM expired e WHERE j.id = e.id
       RETURNING j.id, j.tenant, j.name, j.attempts
     ), se AS (
       ${streamEvents("u", sql`'pending'`, sql`e.attempts`)}
     ), ev AS (
       INSERT INTO ${T.job_events} (job_id, event, worker_id, attempt, detail)
       SELECT b.id, 'lease_lost', b.locked_by, b.attempts, jsonb_build_object('startedAt', b.started_at, 'then', 'retried')
       FROM before b JOIN u ON u.id = b.id
     )
     SELECT id FROM u`,
);

/**
 * Jobs whose lease expired (their worker died or hung) count a failed attempt:
 * back to pending while retries are left. Returns the ids retried.
 */
export async function retryExpiredLeases(db: Sql, batch: number): Promise<string[]> {
  return (await retryExpiredStatement.all(db, { batch })).map((r) => r.id);
}

const failExpiredStatement = statement<{ batch: number }, { id: string }>(
  (p) => sql`WITH expired AS MATERIALIZED (
       SELECT id FROM ${T.jobs}
       WHERE status = 'running' AND lease_expires_at < now() AND retry_count >= max_retries
       ORDER BY id LIMIT ${p.batch} FOR UPDATE SKIP LOCKED
     ), done AS (
       DELETE FROM ${T.jobs} j USING expired e WHERE j.id = e.id RETURNING j.*
     ), se AS (
       ${streamEvents("done", sql`'failed'`, sql`e.attempts`)}
     ), ev AS (
       INSERT INTO ${T.job_events} (job_id, event, worker_id, attempt, detail)
       SELECT d.id, 'lease_lost', d.locked_by, d.attempts, jsonb_build_object('startedAt', d.started_at, 'then', 'failed')
       FROM done d
     ), archived AS (
       ${archiveInsert("done", { status: sql`'failed'`, error: sql`format('lease expired: worker %s stopped renewing it', s.locked_by)`, result: sql`NULL` })}
       RETURNING job_id
     )
     SELECT job_id AS id FROM archived`,
);

/** Jobs whose lease expired with no retries left end failed. Returns the ids archived. */
export async function failExpiredLeases(db: Sql, batch: number): Promise<string[]> {
  return (await failExpiredStatement.all(db, { batch })).map((r) => r.id);
}
