import type { Sql } from "../database";
import { unblockDependents } from "./finish";
import { archiveInsert, streamEvents } from "./rows";
import { CHANNEL, sql, statement, T } from "./template";

/** A job that ended failed or cancelled, whose dependents must follow their edges' failure policies. */
export interface CancelRoot {
  id: string;
  status: "failed" | "cancelled";
}

/** What {@link finishDownstream} did. */
export interface DownstreamOutcome {
  /** Jobs archived because of the roots, with what they ended as. */
  ended: Array<{ id: string; outcome: "failed" | "cancelled" }>;
  /** Dependents that became ready because they ignore the failure. */
  ready: number;
}

/**
 * Applies the failure policies of the edges below `roots`, transitively:
 * a dependent reached through a `cancel` edge is archived as cancelled, one
 * reached through a `fail` edge as failed (failed wins when both reach it),
 * each naming the root cause; a dependent reached only through `ignore`
 * edges counts the dependency as finished (and may become ready). The
 * children a failed or cancelled job delegated (but the `detached` ones) are
 * cancelled too, running ones included, and so on down. With `everything`
 * (cancel with cascade), every live job downstream is cancelled, running
 * ones included, whatever the edges say. A parked parent's `wait` edge is
 * never followed down: the parent wakes (its child ended) instead. Workers
 * running a job cancelled here are told at once (NOTIFY).
 *
 * Repeats from the newly archived jobs until a round finds nothing, so that a
 * dependent created concurrently (invisible to the first statement's
 * snapshot) is caught too.
 */
export async function finishDownstream(db: Sql, roots: readonly CancelRoot[], options: { everything?: boolean } = {}): Promise<DownstreamOutcome> {
  const everything = options.everything === true;
  const outcome: DownstreamOutcome = { ended: [], ready: 0 };
  let frontier: Array<{ id: string; root: string; root_status: string }> = roots.map((r) => ({ id: r.id, root: r.id, root_status: r.status }));
  let ignoreFrom = roots.map((r) => r.id);
  while (frontier.length > 0) {
    const rows = await downstreamStatement.all(db, { frontier: JSON.stringify(frontier), ids: frontier.map((f) => f.id), everything });
    for (const row of rows) outcome.ended.push({ id: row.id, outcome: row.outcome });
    // Dependents that ignore the failure of what just ended count it as finished.
    outcome.ready += await unblockDependents(db, [...ignoreFrom, ...rows.map((r) => r.id)], { along: everything ? "waiting" : "ignoring" });
    frontier = rows;
    ignoreFrom = [];
  }
  return outcome;
}

const downstreamStatement = statement<
  { frontier: string; ids: string[]; everything: boolean },
  { id: string; root: string; root_status: string; outcome: "failed" | "cancelled" }
>(
  (p) => sql`WITH RECURSIVE start AS (
         SELECT * FROM jsonb_to_recordset(${p.frontier}::jsonb) AS x(id text, root text, root_status text)
       ), down(id, root, root_status, policy) AS (
         -- ANY(ids) tells the planner how many ids there are (jsonb_to_recordset would not).
         SELECT n.id, s.root, s.root_status, n.policy FROM start s CROSS JOIN LATERAL (
           SELECT d.job_id AS id, d.on_failure AS policy FROM ${T.job_dependencies} d
           WHERE d.depends_on_id = s.id AND d.depends_on_id = ANY(${p.ids}::text[]) AND d.on_failure <> 'wait'
             AND (${p.everything}::boolean OR d.on_failure <> 'ignore')
           UNION ALL
           SELECT c.id, 'child' FROM ${T.jobs} c WHERE c.parent_id = s.id AND c.parent_id = ANY(${p.ids}::text[]) AND NOT c.detached
         ) n JOIN ${T.jobs} lj ON lj.id = n.id
         UNION
         SELECT n.id, down.root, down.root_status, n.policy FROM down CROSS JOIN LATERAL (
           SELECT d.job_id AS id, d.on_failure AS policy FROM ${T.job_dependencies} d
           WHERE d.depends_on_id = down.id AND d.on_failure <> 'wait' AND (${p.everything}::boolean OR d.on_failure <> 'ignore')
           UNION ALL
           SELECT c.id, 'child' FROM ${T.jobs} c WHERE c.parent_id = down.id AND NOT c.detached
         ) n JOIN ${T.jobs} lj ON lj.id = n.id
       ), victims AS (
         SELECT DISTINCT ON (id) id, root, root_status,
           CASE WHEN NOT ${p.everything}::boolean AND bool_or(policy = 'fail') OVER (PARTITION BY id) THEN 'failed' ELSE 'cancelled' END AS outcome,
           ${p.everything}::boolean OR bool_or(policy = 'child') OVER (PARTITION BY id) AS running_too
         FROM down ORDER BY id, root
       ), locked AS (
         SELECT j.id, v.root, v.root_status, v.outcome FROM ${T.jobs} j JOIN victims v ON v.id = j.id
         WHERE j.status = 'pending' OR (v.running_too AND j.status = 'running') ORDER BY j.id FOR UPDATE OF j
       ), moved AS (
         DELETE FROM ${T.jobs} j USING locked l WHERE j.id = l.id
         RETURNING j.*, l.root, l.root_status, l.outcome
       ), told AS (
         -- Workers abort the running ones at once (a payload too long for NOTIFY: at their next heartbeat).
         SELECT pg_notify(${CHANNEL.cancelled}, ids) FROM (SELECT json_agg(id)::text AS ids FROM moved WHERE status = 'running') r
         WHERE ids IS NOT NULL AND octet_length(ids) < 7900
       ), se AS (
         ${streamEvents("moved", sql`e.outcome`, sql`e.attempts`)}
       ), archived AS (
         ${archiveInsert("moved", { status: sql`s.outcome`, error: sql`format('%s because job %s %s', s.outcome, to_json(s.root)::text, s.root_status)`, result: sql`NULL` })}
       )
       -- archived runs to completion whether or not it is read (as every data-modifying CTE does).
       SELECT m.id, m.root, m.root_status, m.outcome, (SELECT count(*) FROM told) AS told FROM moved m`,
);

const archiveCancelledStatement = statement<{ id: string; reason: string }, { id: string }>(
  (p) => sql`WITH done AS (DELETE FROM ${T.jobs} WHERE id = ${p.id} RETURNING *),
     se AS (${streamEvents("done", sql`'cancelled'`, sql`e.attempts`)}),
     archived AS (${archiveInsert("done", { status: sql`'cancelled'`, error: sql`${p.reason}::text`, result: sql`NULL` })} RETURNING job_id)
     SELECT job_id AS id FROM archived`,
);

/** Archives a live job (pending or running) as cancelled. Returns false if it was not live. */
export async function archiveCancelled(db: Sql, id: string, reason: string): Promise<boolean> {
  return (await archiveCancelledStatement.all(db, { id, reason })).length > 0;
}
