import type { Sql } from "../database";
import { byClaimOrder, PLAIN_READY } from "./claim";
import { READY_CHANNEL } from "./insert";
import { filterCondition, type WorkerFilter } from "./limits";
import { LIVE_COLUMNS, type JobRow } from "./rows";

/** A completing worker's offer to run the dependents its completions make ready. */
export interface HandoffRequest {
  workerId: string;
  /**
   * One fresh lease token per job it may take, as many as it has room for:
   * made before the write, so that the jobs a committed write leased can be
   * found again if its reply was lost ({@link leasedWithTokens}).
   */
  tokens: readonly string[];
  /** Lease length in seconds, as for a claim. */
  leaseSeconds: number;
  /** The worker's queues and tags: it takes only jobs it may run. */
  filter: WorkerFilter;
}

/**
 * {@link unblockDependents} for a worker's completion, which also leases to
 * that worker, in the same row update, as many of the dependents that become
 * ready as it brought tokens for: one statement and one row version instead
 * of an unblock now and a claim after the commit, and no round trip between a
 * job's end and its dependent's start.
 *
 * Only what the plain claim would give this worker is handed over: no
 * tenant, rate-limit or concurrency key (the flow-control claim enforces
 * those), no delegated child (its parent may claim it by id), due, and
 * matching the worker's queues and tags; highest priority first, then
 * earliest run time, then id ({@link PLAIN_READY}, {@link byClaimOrder}).
 * None is handed over while a ready job the worker could claim comes before
 * it in that order: those keep their turn. Workers are notified only of the
 * dependents that became ready and were not handed over.
 */
export async function unblockAndHandOff(
  sql: Sql,
  completedIds: readonly string[],
  request: HandoffRequest,
  options: { final?: boolean } = {},
): Promise<{ ready: number; handed: JobRow[] }> {
  if (completedIds.length === 0) return { ready: 0, handed: [] };
  const onDependent = filterCondition(request.filter, "c", 7);
  const onReady = filterCondition(request.filter, "jobs", 7);
  const out = await sql.query<JobRow & { ready: number }>(
    `WITH deps AS (
       SELECT d.job_id, count(*)::int AS n
       FROM job_dependencies d
       WHERE d.depends_on_id = ANY($1::text[])
       GROUP BY d.job_id
     ), locked AS (
       -- The row lock returns each dependent's latest version: its count and attributes are current.
       SELECT c.id, deps.n, c.pending_dependencies, c.priority, c.run_at,
         (COALESCE(c.tenant, '') = '' AND c.rate_limit_key IS NULL AND c.concurrency_key IS NULL
          AND c.parent_id IS NULL AND c.run_at <= now()${onDependent.sql}) AS plain
       FROM jobs c JOIN deps ON deps.job_id = c.id
       WHERE c.status = 'pending' ORDER BY c.id FOR UPDATE OF c
     ), head AS MATERIALIZED (
       -- The first job the plain claim would give this worker now (the statement's snapshot:
       -- not counting the dependents this statement unblocks).
       SELECT priority, run_at, id FROM jobs
       WHERE ${PLAIN_READY}${onReady.sql}
       ORDER BY priority DESC, run_at, id
       LIMIT 1
     ), chosen AS (
       -- One time for each job handed over: it became ready and started at once.
       SELECT l.id, row_number() OVER (ORDER BY l.priority DESC, l.run_at, l.id) AS k, clock_timestamp() AS at
       FROM locked l
       WHERE l.pending_dependencies = l.n AND l.plain
         AND NOT EXISTS (SELECT 1 FROM head h WHERE h.priority > l.priority OR (h.priority = l.priority AND (h.run_at, h.id) < (l.run_at, l.id)))
       ORDER BY l.priority DESC, l.run_at, l.id
       LIMIT $3
     ), unblocked AS (
       UPDATE jobs c SET pending_dependencies = c.pending_dependencies - l.n, updated_at = now(),
         ready_at = CASE WHEN ch.k IS NOT NULL THEN ch.at WHEN c.pending_dependencies = l.n THEN clock_timestamp() ELSE c.ready_at END,
         status = CASE WHEN ch.k IS NULL THEN c.status ELSE 'running' END,
         locked_by = CASE WHEN ch.k IS NULL THEN c.locked_by ELSE $4 END,
         lease_token = CASE WHEN ch.k IS NULL THEN c.lease_token ELSE ($5::uuid[])[ch.k] END,
         lease_expires_at = CASE WHEN ch.k IS NULL THEN c.lease_expires_at ELSE ch.at + make_interval(secs => $6) END,
         started_at = CASE WHEN ch.k IS NULL THEN c.started_at ELSE ch.at END,
         attempts = c.attempts + CASE WHEN ch.k IS NULL THEN 0 ELSE 1 END
       FROM locked l LEFT JOIN chosen ch ON ch.id = l.id
       WHERE c.id = l.id
       RETURNING c.*, ch.k IS NOT NULL AS handed
     ), counts AS (
       SELECT count(*) FILTER (WHERE NOT handed AND pending_dependencies = 0 AND run_at <= now())::int AS ready FROM unblocked
     )
     -- One row with the count even when nothing is handed over.
     SELECT n.ready, n.quiet, ${LIVE_COLUMNS}
     FROM (SELECT ready, (SELECT pg_notify($2, '') FROM counts WHERE ready > 0) IS NULL AS quiet FROM counts) n
     LEFT JOIN unblocked j ON j.handed`,
    [completedIds, READY_CHANNEL, request.tokens.length, request.workerId, request.tokens, request.leaseSeconds, ...onDependent.params],
    { prepare: true, final: options.final },
  );
  const handed: JobRow[] = out.filter((r) => r.id !== null);
  return { ready: out[0]?.ready ?? 0, handed: handed.sort(byClaimOrder) };
}

/**
 * The jobs leased to `workerId` under any of `tokens` and still running: what
 * a handoff leased when its write committed but its reply never arrived.
 */
export function leasedWithTokens(sql: Sql, workerId: string, tokens: readonly string[]): Promise<Array<{ id: string; lease_token: string }>> {
  return sql.query(
    `SELECT id, lease_token::text AS lease_token FROM jobs
     WHERE status = 'running' AND locked_by = $1 AND lease_token = ANY($2::uuid[])`,
    [workerId, tokens],
  );
}
