import type { Sql } from "../database";
import { unblockDependents } from "./finish";
import { archiveInsert, streamEvents } from "./rows";
import { sql, statement, T } from "./template";

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
 * edges counts the dependency as finished (and may become ready). With
 * `everything` (cancel with cascade), every live job downstream is cancelled,
 * running ones included, whatever the edges say.
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
    if (!everything) outcome.ready += await unblockDependents(db, [...ignoreFrom, ...rows.map((r) => r.id)], { onlyIgnoring: true });
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
         SELECT d.job_id, s.root, s.root_status, d.on_failure
         FROM ${T.job_dependencies} d JOIN start s ON s.id = d.depends_on_id JOIN ${T.jobs} lj ON lj.id = d.job_id
         WHERE d.depends_on_id = ANY(${p.ids}::text[]) AND (${p.everything}::boolean OR d.on_failure <> 'ignore')
         UNION
         SELECT d.job_id, down.root, down.root_status, d.on_failure
         FROM down JOIN ${T.job_dependencies} d ON d.depends_on_id = down.id JOIN ${T.jobs} lj ON lj.id = d.job_id
         WHERE ${p.everything}::boolean OR d.on_failure <> 'ignore'
       ), victims AS (
         SELECT DISTINCT ON (id) id, root, root_status,
           CASE WHEN NOT ${p.everything}::boolean AND bool_or(policy = 'fail') OVER (PARTITION BY id) THEN 'failed' ELSE 'cancelled' END AS outcome
         FROM down ORDER BY id, root
       ), locked AS (
         SELECT j.id, v.root, v.root_status, v.outcome FROM ${T.jobs} j JOIN victims v ON v.id = j.id
         WHERE j.status = 'pending' OR (${p.everything}::boolean AND j.status = 'running') ORDER BY j.id FOR UPDATE OF j
       ), moved AS (
         DELETE FROM ${T.jobs} j USING locked l WHERE j.id = l.id
         RETURNING j.*, l.root, l.root_status, l.outcome
       ), se AS (
         ${streamEvents("moved", sql`e.outcome`, sql`e.attempts`)}
       ), archived AS (
         ${archiveInsert("moved", { status: sql`s.outcome`, error: sql`format('%s because job %s %s', s.outcome, to_json(s.root)::text, s.root_status)`, result: sql`NULL` })}
       )
       -- archived runs to completion whether or not it is read (as every data-modifying CTE does).
       SELECT m.id, m.root, m.root_status, m.outcome FROM moved m`,
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
