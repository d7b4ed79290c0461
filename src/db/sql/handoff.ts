import type { Sql } from "../database";
import { byClaimOrder } from "./claim";
import { lockedDependents } from "./finish";
import { claimOrder, filterValues, plainReady, shapeKey, shapeOf, workerFilter, type FilterShape, type WorkerFilter } from "./fragments";
import { leaseSetWhere, LIVE_COLUMNS, streamEvents, type JobRow, type LeaseParams } from "./rows";
import { CHANNEL, sql, statement, T, variants } from "./template";

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

type HandoffParams = LeaseParams & WorkerFilter & { ids: readonly string[]; room: number; tokens: readonly string[] };

const handoffStatement = variants(shapeKey, (shape: FilterShape) =>
  statement<HandoffParams, JobRow & { ready: number }>(
    (p) => sql`WITH ${lockedDependents(
      sql`${p.ids}`,
      "all",
      sql`, c.pending_dependencies, c.priority, c.run_at,
         (COALESCE(c.tenant, '') = '' AND c.rate_limit_key IS NULL AND c.concurrency_key IS NULL
          AND c.run_at <= now()${workerFilter(p, "c", shape)}) AS plain`,
    )}, head AS MATERIALIZED (
       -- The first job the plain claim would give this worker now (the statement's snapshot:
       -- not counting the dependents this statement unblocks).
       SELECT r.priority, r.run_at, r.id FROM ${T.jobs} r
       WHERE ${plainReady("r")}${workerFilter(p, "r", shape)}
       ORDER BY ${claimOrder("r")}
       LIMIT 1
     ), chosen AS (
       -- One time for each job handed over: it became ready and started at once.
       SELECT l.id, row_number() OVER (ORDER BY ${claimOrder("l")}) AS k, clock_timestamp() AS at
       FROM locked l
       WHERE l.pending_dependencies = l.n AND l.plain
         AND NOT EXISTS (SELECT 1 FROM head h WHERE h.priority > l.priority OR (h.priority = l.priority AND (h.run_at, h.id) < (l.run_at, l.id)))
       ORDER BY ${claimOrder("l")}
       LIMIT ${p.room}
     ), unblocked AS (
       UPDATE ${T.jobs} c SET pending_dependencies = c.pending_dependencies - l.n, updated_at = now(),
         ready_at = CASE WHEN ch.k IS NOT NULL THEN ch.at WHEN c.pending_dependencies = l.n THEN clock_timestamp() ELSE c.ready_at END,
         ${leaseSetWhere(sql`ch.k IS NOT NULL`, p, "c", sql`(${p.tokens}::uuid[])[ch.k]`, sql`ch.at`)}
       FROM locked l LEFT JOIN chosen ch ON ch.id = l.id
       WHERE c.id = l.id
       RETURNING c.*, ch.k IS NOT NULL AS handed
     ), se AS (
       ${streamEvents("unblocked", sql`'running'`, sql`e.attempts`, sql` WHERE e.handed`)}
     ), counts AS (
       SELECT count(*) FILTER (WHERE NOT handed AND pending_dependencies = 0 AND run_at <= now())::int AS ready FROM unblocked
     )
     -- One row with the count even when nothing is handed over.
     SELECT n.ready, n.quiet, ${LIVE_COLUMNS}
     FROM (SELECT ready, (SELECT pg_notify(${CHANNEL.ready}, '') FROM counts WHERE ready > 0) IS NULL AS quiet FROM counts) n
     LEFT JOIN unblocked j ON j.handed`,
    { prepare: true },
  ),
);

/**
 * The unblocking of a worker's completion that also leases to that worker,
 * in the same row update, as many of the dependents that become ready as it
 * brought tokens for: one statement and one row version instead of an
 * unblock now and a claim after the commit, and no round trip between a
 * job's end and its dependent's start.
 *
 * Only what the plain claim would give this worker is handed over: no
 * tenant, rate-limit or concurrency key (the flow-control claim enforces
 * those), no delegated child (its parent may claim it by id), due, and
 * matching the worker's queues and tags, in claim order. None is handed over
 * while a ready job the worker could claim comes before it in that order:
 * those keep their turn. Workers are notified only of the dependents that
 * became ready and were not handed over.
 */
export async function unblockAndHandOff(
  db: Sql,
  completedIds: readonly string[],
  request: HandoffRequest,
  options: { final?: boolean } = {},
): Promise<{ ready: number; handed: JobRow[] }> {
  if (completedIds.length === 0) return { ready: 0, handed: [] };
  const out = await handoffStatement(shapeOf(request.filter)).all(
    db,
    {
      ids: completedIds,
      room: request.tokens.length,
      tokens: request.tokens,
      workerId: request.workerId,
      leaseSeconds: request.leaseSeconds,
      ...filterValues(request.filter),
    },
    { final: options.final },
  );
  const handed: JobRow[] = out.filter((r) => r.id !== null);
  return { ready: out[0]?.ready ?? 0, handed: handed.sort(byClaimOrder) };
}

const leasedWithStatement = statement<{ workerId: string; tokens: readonly string[] }, { id: string; lease_token: string }>(
  (p) => sql`SELECT id, lease_token::text AS lease_token FROM ${T.jobs}
     WHERE status = 'running' AND locked_by = ${p.workerId} AND lease_token = ANY(${p.tokens}::uuid[])`,
);

/**
 * The jobs leased to `workerId` under any of `tokens` and still running: what
 * a handoff leased when its write committed but its reply never arrived.
 */
export function leasedWithTokens(db: Sql, workerId: string, tokens: readonly string[]): Promise<Array<{ id: string; lease_token: string }>> {
  return leasedWithStatement.all(db, { workerId, tokens });
}
