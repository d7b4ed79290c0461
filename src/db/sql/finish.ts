import type { Sql } from "../database";
import { READY_CHANNEL } from "./insert";
import { archiveInsert, startAfterHold } from "./rows";

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

/**
 * Archives completed jobs whose lease still matches, in one statement; a job
 * whose lease was lost (reclaimed, cancelled) is left alone. Returns the ids
 * archived. Run {@link unblockDependents} in the same transaction afterwards.
 */
export async function archiveCompleted(sql: Sql, completions: readonly Completion[]): Promise<string[]> {
  const rows = await sql.query<{ id: string }>(
    `WITH input AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id text, lease_token uuid, result jsonb, held_ms float8)
     ), done AS (
       DELETE FROM jobs j USING input i
       WHERE j.id = i.id AND j.lease_token = i.lease_token AND j.status = 'running'
       RETURNING j.*, i.result AS new_result, i.held_ms
     ), archived AS (
       ${archiveInsert("done", "'completed'", "NULL", "s.new_result", startAfterHold("s.started_at", "COALESCE(s.held_ms, 0)"))}
       RETURNING job_id
     )
     SELECT job_id AS id FROM archived`,
    [JSON.stringify(completions.map((c) => ({ id: c.id, lease_token: c.leaseToken, result: c.result ?? null, held_ms: c.heldMs ?? null })))],
    { prepare: true },
  );
  return rows.map((r) => r.id);
}

/**
 * Decrements the unfinished-dependency count of every pending dependent of the
 * completed jobs (with `onlyIgnoring`: of the failed or cancelled jobs, along
 * the edges whose policy ignores that), locking the dependents in id order (no deadlocks between
 * concurrent completions), and notifies workers when any became ready.
 *
 * With `final`, it is its transaction's last statement and the transaction's
 * COMMIT goes out with it (see `QueryOptions.final`).
 *
 * This must be a separate statement from the archiving: a statement that waited
 * for a row lock keeps its old snapshot, so a dependent created while the
 * completion waited would be missed and stay blocked forever.
 */
export async function unblockDependents(sql: Sql, completedIds: readonly string[], options: { onlyIgnoring?: boolean; final?: boolean } = {}): Promise<number> {
  if (completedIds.length === 0) return 0;
  const rows = await sql.query<{ ready: number }>(
    `WITH deps AS (
       SELECT d.job_id, count(*)::int AS n
       FROM job_dependencies d
       WHERE d.depends_on_id = ANY($1::text[]) AND (NOT $3::boolean OR d.on_failure = 'ignore')
       GROUP BY d.job_id
     ), locked AS (
       SELECT c.id, deps.n FROM jobs c JOIN deps ON deps.job_id = c.id
       WHERE c.status = 'pending' ORDER BY c.id FOR UPDATE OF c
     ), unblocked AS (
       UPDATE jobs c SET pending_dependencies = c.pending_dependencies - l.n, updated_at = now(),
         ready_at = CASE WHEN c.pending_dependencies = l.n THEN clock_timestamp() ELSE c.ready_at END
       FROM locked l
       WHERE c.id = l.id
       RETURNING c.pending_dependencies, c.run_at
     ), counts AS (
       SELECT count(*) FILTER (WHERE pending_dependencies = 0 AND run_at <= now())::int AS ready FROM unblocked
     )
     SELECT ready, (SELECT pg_notify($2, '') FROM counts WHERE ready > 0) IS NULL AS quiet FROM counts`,
    [completedIds, READY_CHANNEL, options.onlyIgnoring === true],
    { prepare: true, final: options.final },
  );
  return rows[0]?.ready ?? 0;
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

/**
 * Records a failed attempt whose lease still matches: back to pending after a
 * delay while retries are left, else archived as failed. Returns the outcome;
 * when `failed`, cancel the job's dependents in the same transaction.
 */
export async function recordFailure(sql: Sql, failure: Failure): Promise<FailureOutcome> {
  const retried = await sql.query<{ id: string }>(
    `WITH before AS (
       SELECT id, locked_by, attempts, started_at FROM jobs
       WHERE id = $1 AND lease_token = $2::uuid AND status = 'running' AND retry_count < max_retries AND NOT $5::boolean
     ), u AS (
       UPDATE jobs j SET status = 'pending', retry_count = j.retry_count + 1, error_message = $3,
         run_at = now() + make_interval(secs => $4), locked_by = NULL, lease_token = NULL,
         lease_expires_at = NULL, updated_at = now()
       FROM before b
       -- The lease is checked again here: a row lock waited for re-checks only this WHERE.
       WHERE j.id = b.id AND j.lease_token = $2::uuid AND j.status = 'running' AND j.retry_count < j.max_retries
       RETURNING j.id
     ), ev AS (
       INSERT INTO job_events (job_id, event, worker_id, attempt, detail)
       SELECT b.id, 'retried', b.locked_by, b.attempts,
         jsonb_build_object('error', $3::text, 'startedAt', ${startAfterHold("b.started_at", "$6::float8")}, 'retryInSeconds', $4::float8)
       FROM before b JOIN u ON u.id = b.id
     )
     SELECT id FROM u`,
    [failure.id, failure.leaseToken, failure.error, failure.retryDelaySeconds, failure.final, failure.heldMs ?? 0],
  );
  if (retried.length > 0) return "retried";
  const failed = await sql.query<{ id: string }>(
    `WITH done AS (
       DELETE FROM jobs WHERE id = $1 AND lease_token = $2::uuid AND status = 'running' RETURNING *
     ), archived AS (
       ${archiveInsert("done", "'failed'", "$3::text", "NULL", startAfterHold("s.started_at", "$4::float8"))}
       RETURNING job_id
     )
     SELECT job_id AS id FROM archived`,
    [failure.id, failure.leaseToken, failure.error, failure.heldMs ?? 0],
  );
  return failed.length > 0 ? "failed" : "refused";
}
