import type { Sql } from "../database";
import { archiveInsert, startAfterHold, streamEvents } from "./rows";
import { CHANNEL, sql, statement, T, variants, type Fragment } from "./template";

/** One finished attempt to record as completed, with the lease it ran under. */
export interface Completion {
  id: string;
  leaseToken: string;
  result: unknown;
  /**
   * Milliseconds the job waited in the worker, claimed ahead of a free slot
   * (`prefetch`), before its executor started: the recorded start time and
   * duration leave that wait out.
   */
  heldMs?: number;
}

const archiveCompletedStatement = statement<{ completions: string }, { id: string }>(
  (p) => sql`WITH input AS (
       SELECT * FROM jsonb_to_recordset(${p.completions}::jsonb) AS x(id text, lease_token uuid, result jsonb, held_ms float8)
     ), done AS (
       DELETE FROM ${T.jobs} j USING input i
       WHERE j.id = i.id AND j.lease_token = i.lease_token AND j.status = 'running'
       RETURNING j.*, i.result AS new_result, i.held_ms
     ), se AS (
       ${streamEvents("done", sql`'completed'`, sql`e.attempts`)}
     ), archived AS (
       ${archiveInsert("done", { status: sql`'completed'`, error: sql`NULL`, result: sql`s.new_result`, startedAt: startAfterHold(sql`s.started_at`, sql`COALESCE(s.held_ms, 0)`) })}
       RETURNING job_id
     )
     SELECT job_id AS id FROM archived`,
  { prepare: true },
);

/**
 * Archives completed jobs whose lease still matches, in one statement; a job
 * whose lease was lost (reclaimed, cancelled) is left alone. Returns the ids
 * archived. Run {@link unblockDependents} in the same transaction afterwards.
 */
export async function archiveCompleted(db: Sql, completions: readonly Completion[]): Promise<string[]> {
  const rows = await archiveCompletedStatement.all(db, {
    completions: JSON.stringify(completions.map((c) => ({ id: c.id, lease_token: c.leaseToken, result: c.result ?? null, held_ms: c.heldMs ?? null }))),
  });
  return rows.map((r) => r.id);
}

/**
 * Which edges out of finished jobs count them as done: all of them (the jobs
 * completed), those that let a failure through (`ignore`, and the `wait` edges
 * of a parked parent, which wakes however its child ended), or only `wait`
 * edges (a cascade cancels every other dependent).
 */
export type UnblockAlong = "all" | "ignoring" | "waiting";
const ALONG: Record<UnblockAlong, Fragment> = {
  all: sql`true`,
  ignoring: sql`d.on_failure IN ('ignore', 'wait')`,
  waiting: sql`d.on_failure = 'wait'`,
};

/**
 * The dependents of the finished jobs `ids` along the edges `along` names,
 * each with how many of its edges lead there, locked in id order (no
 * deadlocks between concurrent completions): the CTEs `deps` and `locked`
 * (with `extra` columns of the dependent `c`) that both unblocking statements
 * start from.
 */
export function lockedDependents(ids: Fragment, along: UnblockAlong, extra: Fragment): Fragment {
  return sql`deps AS (
       SELECT d.job_id, count(*)::int AS n
       FROM ${T.job_dependencies} d
       WHERE d.depends_on_id = ANY(${ids}::text[]) AND ${ALONG[along]}
       GROUP BY d.job_id
     ), locked AS (
       -- The row lock returns each dependent's latest version: its count and attributes are current.
       SELECT c.id, deps.n${extra} FROM ${T.jobs} c JOIN deps ON deps.job_id = c.id
       WHERE c.status = 'pending' ORDER BY c.id FOR UPDATE OF c
     )`;
}

const unblockStatement = variants((along: UnblockAlong) => along, (along) => statement<{ ids: readonly string[] }, { ready: number }>(
  (p) => sql`WITH ${lockedDependents(sql`${p.ids}`, along, sql``)}, unblocked AS (
       UPDATE ${T.jobs} c SET pending_dependencies = c.pending_dependencies - l.n, updated_at = now(),
         ready_at = CASE WHEN c.pending_dependencies = l.n THEN clock_timestamp() ELSE c.ready_at END
       FROM locked l
       WHERE c.id = l.id
       RETURNING c.pending_dependencies, c.run_at
     ), counts AS (
       SELECT count(*) FILTER (WHERE pending_dependencies = 0 AND run_at <= now())::int AS ready FROM unblocked
     )
     SELECT ready, (SELECT pg_notify(${CHANNEL.ready}, '') FROM counts WHERE ready > 0) IS NULL AS quiet FROM counts`,
  { prepare: true },
));

/**
 * Decrements the unfinished-dependency count of every pending dependent of the
 * finished jobs along the edges `along` names (default: all, for completed
 * jobs) and notifies workers when any became ready. With `final`, it is its transaction's last statement and the
 * transaction's COMMIT goes out with it (see `QueryOptions.final`).
 *
 * This must be a separate statement from the archiving: a statement that waited
 * for a row lock keeps its old snapshot, so a dependent created while the
 * completion waited would be missed and stay blocked forever.
 */
export async function unblockDependents(db: Sql, finishedIds: readonly string[], options: { along?: UnblockAlong; final?: boolean } = {}): Promise<number> {
  if (finishedIds.length === 0) return 0;
  const row = await unblockStatement(options.along ?? "all").one(db, { ids: finishedIds }, { final: options.final });
  return row?.ready ?? 0;
}

/** What became of a failed attempt. */
export type FailureOutcome = "retried" | "failed" | "refused";

/** A failed attempt to record. */
export interface Failure {
  id: string;
  leaseToken: string;
  error: string;
  /** Delay before the retry, in seconds. */
  retryDelaySeconds: number;
  /** Fail finally even when retries are left (e.g. no executor accepts the job). */
  final: boolean;
  /** As in {@link Completion}: the wait before the executor started, left out of the recorded start and duration. */
  heldMs?: number;
}

type FailureParams = { id: string; leaseToken: string; error: string; delay: number; final: boolean; heldMs: number };

const retryFailedStatement = statement<FailureParams, { id: string }>(
  (p) => sql`WITH before AS (
       SELECT id, locked_by, attempts, started_at FROM ${T.jobs}
       WHERE id = ${p.id} AND lease_token = ${p.leaseToken}::uuid AND status = 'running' AND retry_count < max_retries AND NOT ${p.final}::boolean
     ), u AS (
       UPDATE ${T.jobs} j SET status = 'pending', retry_count = j.retry_count + 1, error_message = ${p.error},
         run_at = now() + make_interval(secs => ${p.delay}), locked_by = NULL, lease_token = NULL,
         lease_expires_at = NULL, updated_at = now()
       FROM before b
       -- The lease is checked again here: a row lock waited for re-checks only this WHERE.
       WHERE j.id = b.id AND j.lease_token = ${p.leaseToken}::uuid AND j.status = 'running' AND j.retry_count < j.max_retries
       RETURNING j.id, j.tenant, j.name, j.attempts
     ), se AS (
       ${streamEvents("u", sql`'pending'`, sql`e.attempts`)}
     ), ev AS (
       INSERT INTO ${T.job_events} (job_id, event, worker_id, attempt, detail)
       SELECT b.id, 'retried', b.locked_by, b.attempts,
         jsonb_build_object('error', ${p.error}::text, 'startedAt', ${startAfterHold(sql`b.started_at`, sql`${p.heldMs}::float8`)}, 'retryInSeconds', ${p.delay}::float8)
       FROM before b JOIN u ON u.id = b.id
     )
     SELECT id FROM u`,
);

const failFinallyStatement = statement<Omit<FailureParams, "delay" | "final">, { id: string }>(
  (p) => sql`WITH done AS (
       DELETE FROM ${T.jobs} WHERE id = ${p.id} AND lease_token = ${p.leaseToken}::uuid AND status = 'running' RETURNING *
     ), se AS (
       ${streamEvents("done", sql`'failed'`, sql`e.attempts`)}
     ), archived AS (
       ${archiveInsert("done", { status: sql`'failed'`, error: sql`${p.error}::text`, result: sql`NULL`, startedAt: startAfterHold(sql`s.started_at`, sql`${p.heldMs}::float8`) })}
       RETURNING job_id
     )
     SELECT job_id AS id FROM archived`,
);

/**
 * Records a failed attempt whose lease still matches: back to pending after a
 * delay while retries are left, else archived as failed. Returns the outcome;
 * when `failed`, cancel the job's dependents in the same transaction.
 */
export async function recordFailure(db: Sql, failure: Failure): Promise<FailureOutcome> {
  const common = { id: failure.id, leaseToken: failure.leaseToken, error: failure.error, heldMs: failure.heldMs ?? 0 };
  const retried = await retryFailedStatement.all(db, { ...common, delay: failure.retryDelaySeconds, final: failure.final });
  if (retried.length > 0) return "retried";
  const failed = await failFinallyStatement.all(db, common);
  return failed.length > 0 ? "failed" : "refused";
}
