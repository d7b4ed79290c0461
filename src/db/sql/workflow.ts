import type { Database, Sql } from "../database";
import { lockLiveJobs } from "./insert";
import { HISTORY_COLUMNS, LIVE_COLUMNS, streamEvents, type JobRow } from "./rows";
import { CHANNEL, sql, statement, T } from "./template";

/**
 * Durable workflows (docs/ARCHITECTURE.md, "Durable workflows"): children
 * keyed within their parent, parked parents, stored steps. Every write a
 * running job makes here is fenced by its lease: it happens only while the
 * job's row still carries the attempt's lease token, so a zombie attempt
 * (its lease lost) can neither store a step nor create a child.
 */

const leaseHeldStatement = statement<{ id: string; token: string }, { id: string }>(
  (p) => sql`SELECT id FROM ${T.jobs} WHERE id = ${p.id} AND lease_token = ${p.token}::uuid AND status = 'running' FOR SHARE`,
);

/**
 * Share-locks a running job's row if `token` is still its lease, until the
 * transaction ends: a claim of the job by another worker (which updates the
 * row) waits for this transaction, so what it writes is seen by the next
 * attempt. False when the lease is gone.
 */
export async function holdLease(db: Sql, id: string, token: string): Promise<boolean> {
  return (await leaseHeldStatement.all(db, { id, token })).length > 0;
}

const childrenStatement = statement<{ parentId: string; keys: readonly string[] }, JobRow>(
  (p) => sql`SELECT ${LIVE_COLUMNS} FROM ${T.jobs} j WHERE j.parent_id = ${p.parentId} AND j.delegation_key = ANY(${p.keys}::text[])
     UNION ALL
     SELECT ${HISTORY_COLUMNS} FROM ${T.job_history} h WHERE h.parent_id = ${p.parentId} AND h.delegation_key = ANY(${p.keys}::text[])`,
);

/** The children of `parentId` with these keys, live or archived, by key. */
export async function childrenByKey(db: Sql, parentId: string, keys: readonly string[]): Promise<Map<string, JobRow>> {
  const rows = await childrenStatement.all(db, { parentId, keys });
  return new Map(rows.map((r) => [r.delegation_key as string, r]));
}

/** A running job to park: its lease, the children it waits for, and when it may run again. */
export interface ParkRequest {
  id: string;
  leaseToken: string;
  workerId: string;
  /** Children to wait for: the job runs again once each has ended, however it ended. */
  children: readonly string[];
  /** Not before this time (`ctx.sleep`); null: as soon as the children allow. */
  runAt: Date | null;
  /** The children still unfinished at this time are cancelled (a wait's timeout). */
  waitUntil: Date | null;
}

type ParkParams = { id: string; token: string; workerId: string; children: readonly string[]; runAt: Date | null; waitUntil: Date | null; detail: string };

const parkStatement = statement<ParkParams, { id: string; pending_dependencies: number; sent: number }>(
  (p) => sql`WITH p AS (
       SELECT id FROM ${T.jobs} WHERE id = ${p.id} AND lease_token = ${p.token}::uuid AND status = 'running' FOR UPDATE
     ), e AS (
       INSERT INTO ${T.job_dependencies} (job_id, depends_on_id, on_failure)
       SELECT p.id, c, 'wait' FROM p CROSS JOIN unnest(${p.children}::text[]) AS c
       ON CONFLICT (job_id, depends_on_id) DO NOTHING
       RETURNING 1
     ), u AS (
       UPDATE ${T.jobs} j SET status = 'pending', locked_by = NULL, lease_token = NULL, lease_expires_at = NULL,
         pending_dependencies = j.pending_dependencies + (SELECT count(*) FROM e)::int,
         run_at = COALESCE(${p.runAt}::timestamptz, now()), wait_until = ${p.waitUntil}::timestamptz,
         ready_at = CASE WHEN j.pending_dependencies + (SELECT count(*) FROM e)::int = 0 THEN clock_timestamp() END,
         updated_at = now()
       FROM p WHERE j.id = p.id
       RETURNING j.id, j.tenant, j.name, j.attempts, j.pending_dependencies, j.run_at, j.started_at
     ), ev AS (
       INSERT INTO ${T.job_events} (job_id, event, worker_id, attempt, detail)
       SELECT id, 'parked', ${p.workerId}, attempts, ${p.detail}::jsonb || jsonb_build_object('startedAt', started_at) FROM u
     ), se AS (
       ${streamEvents("u", sql`'pending'`, sql`e.attempts`)}
     ), n AS (
       SELECT pg_notify(${CHANNEL.ready}, '') FROM u WHERE u.pending_dependencies = 0 AND u.run_at <= now()
     )
     SELECT id, pending_dependencies, (SELECT count(*) FROM n)::int AS sent FROM u`,
);

/**
 * Parks a running job whose lease still matches: back to pending without
 * using a retry and without a lease, waiting (through one `wait` edge each)
 * for the children still live, and not before `runAt`. Its next attempt
 * re-attaches to the children and reads the stored steps. One transaction:
 * the live children are share-locked first, so a child completing meanwhile
 * waits and then sees the new edge (as a dependency created by `createJobs`
 * does). Returns false when the lease was lost.
 */
export async function parkJob(db: Database, request: ParkRequest): Promise<boolean> {
  return db.transaction(async (tx) => {
    const live = request.children.length === 0 ? [] : (await lockLiveJobs(tx, request.children)).map((r) => r.id);
    const detail = JSON.stringify({ waitingFor: request.children, until: request.runAt, deadline: request.waitUntil });
    const rows = await parkStatement.all(tx, { id: request.id, token: request.leaseToken, workerId: request.workerId, children: live, runAt: request.runAt, waitUntil: request.waitUntil, detail });
    return rows.length > 0;
  });
}

/** A stored step (`ctx.step`) or sleep (`ctx.sleep`) of a job. */
export interface StepRow {
  name: string;
  attempt: number;
  result: unknown;
  wake_at: Date | null;
  created_at: Date;
}

const stepsStatement = statement<{ jobId: string }, StepRow>(
  (p) => sql`SELECT name, attempt, result, wake_at, created_at FROM ${T.job_steps} WHERE job_id = ${p.jobId} ORDER BY created_at, name`,
);

/** A job's stored steps, in the order they were stored. */
export function jobSteps(db: Sql, jobId: string): Promise<StepRow[]> {
  return stepsStatement.all(db, { jobId });
}

type SaveStepParams = { id: string; token: string; workerId: string; name: string; attempt: number; result: string | null; wakeAt: Date | null };

const saveStepStatement = statement<SaveStepParams, { held: number; saved: number }>(
  (p) => sql`WITH p AS (
       SELECT id FROM ${T.jobs} WHERE id = ${p.id} AND lease_token = ${p.token}::uuid AND status = 'running' FOR SHARE
     ), s AS (
       INSERT INTO ${T.job_steps} (job_id, name, attempt, result, wake_at)
       SELECT p.id, ${p.name}, ${p.attempt}, ${p.result}::jsonb, ${p.wakeAt}::timestamptz FROM p
       ON CONFLICT (job_id, name) DO NOTHING
       RETURNING job_id, name
     ), ev AS (
       INSERT INTO ${T.job_events} (job_id, event, worker_id, attempt, detail)
       SELECT job_id, 'step', ${p.workerId}, ${p.attempt}, jsonb_build_object('name', name, 'wakeAt', ${p.wakeAt}::timestamptz) FROM s
     )
     SELECT (SELECT count(*) FROM p)::int AS held, (SELECT count(*) FROM s)::int AS saved`,
);

/**
 * Stores a step's result (or a sleep's wake time) while the attempt's lease
 * holds, with a `step` event. Returns `lost` when the lease is gone (nothing
 * stored), `exists` when a step of this name was stored already.
 */
export async function saveStep(
  db: Sql,
  step: { jobId: string; leaseToken: string; workerId: string; name: string; attempt: number; result: unknown; wakeAt: Date | null },
): Promise<"saved" | "exists" | "lost"> {
  const row = await saveStepStatement.one(db, {
    id: step.jobId,
    token: step.leaseToken,
    workerId: step.workerId,
    name: step.name,
    attempt: step.attempt,
    result: step.result === null || step.result === undefined ? null : JSON.stringify(step.result),
    wakeAt: step.wakeAt,
  });
  if (!row || row.held === 0) return "lost";
  return row.saved > 0 ? "saved" : "exists";
}

const dueWaitsStatement = statement<{ limit: number }, { parent_id: string; child_ids: string[]; wait_until: Date }>(
  (p) => sql`SELECT j.id AS parent_id, array_agg(c.id ORDER BY c.id) AS child_ids, j.wait_until
     FROM ${T.jobs} j
     JOIN ${T.job_dependencies} d ON d.job_id = j.id AND d.on_failure = 'wait'
     JOIN ${T.jobs} c ON c.id = d.depends_on_id
     WHERE j.wait_until <= now() AND j.status = 'pending' AND j.pending_dependencies > 0
     GROUP BY j.id, j.wait_until
     ORDER BY j.wait_until
     LIMIT ${p.limit}`,
);

/** Parked parents whose wait's deadline has passed, with their children still live. */
export function dueWaits(db: Sql, limit: number): Promise<Array<{ parent_id: string; child_ids: string[]; wait_until: Date }>> {
  return dueWaitsStatement.all(db, { limit });
}
