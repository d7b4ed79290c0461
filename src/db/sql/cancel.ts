import type { Sql } from "../database";
import { unblockDependents } from "./finish";
import { archiveInsert } from "./rows";

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
export async function finishDownstream(sql: Sql, roots: readonly CancelRoot[], options: { everything?: boolean } = {}): Promise<DownstreamOutcome> {
  const everything = options.everything === true;
  const outcome: DownstreamOutcome = { ended: [], ready: 0 };
  let frontier: Array<{ id: string; root: string; root_status: string }> = roots.map((r) => ({ id: r.id, root: r.id, root_status: r.status }));
  let ignoreFrom = roots.map((r) => r.id);
  while (frontier.length > 0) {
    const rows = await sql.query<{ id: string; root: string; root_status: string; outcome: "failed" | "cancelled" }>(
      `WITH RECURSIVE start AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id text, root text, root_status text)
       ), down(id, root, root_status, policy) AS (
         -- ANY($2) tells the planner how many ids there are (jsonb_to_recordset would not).
         SELECT d.job_id, s.root, s.root_status, d.on_failure
         FROM job_dependencies d JOIN start s ON s.id = d.depends_on_id JOIN jobs lj ON lj.id = d.job_id
         WHERE d.depends_on_id = ANY($2::text[]) AND ($3::boolean OR d.on_failure <> 'ignore')
         UNION
         SELECT d.job_id, down.root, down.root_status, d.on_failure
         FROM down JOIN job_dependencies d ON d.depends_on_id = down.id JOIN jobs lj ON lj.id = d.job_id
         WHERE $3::boolean OR d.on_failure <> 'ignore'
       ), victims AS (
         SELECT DISTINCT ON (id) id, root, root_status,
           CASE WHEN NOT $3::boolean AND bool_or(policy = 'fail') OVER (PARTITION BY id) THEN 'failed' ELSE 'cancelled' END AS outcome
         FROM down ORDER BY id, root
       ), locked AS (
         SELECT j.id, v.root, v.root_status, v.outcome FROM jobs j JOIN victims v ON v.id = j.id
         WHERE j.status = 'pending' OR ($3::boolean AND j.status = 'running') ORDER BY j.id FOR UPDATE OF j
       ), moved AS (
         DELETE FROM jobs j USING locked l WHERE j.id = l.id
         RETURNING j.*, l.root, l.root_status, l.outcome
       ), archived AS (
         ${archiveInsert("moved", "s.outcome", `format('%s because job %s %s', s.outcome, to_json(s.root)::text, s.root_status)`, "NULL")}
       )
       -- archived runs to completion whether or not it is read (as every data-modifying CTE does).
       SELECT m.id, m.root, m.root_status, m.outcome FROM moved m`,
      [JSON.stringify(frontier), frontier.map((f) => f.id), everything],
    );
    for (const row of rows) outcome.ended.push({ id: row.id, outcome: row.outcome });
    // Dependents that ignore the failure of what just ended count it as finished.
    if (!everything) outcome.ready += await unblockDependents(sql, [...ignoreFrom, ...rows.map((r) => r.id)], { onlyIgnoring: true });
    frontier = rows;
    ignoreFrom = [];
  }
  return outcome;
}

/** Archives a live job (pending or running) as cancelled. Returns false if it was not live. */
export async function archiveCancelled(sql: Sql, id: string, reason: string): Promise<boolean> {
  const rows = await sql.query<{ id: string }>(
    `WITH done AS (DELETE FROM jobs WHERE id = $1 RETURNING *),
     archived AS (${archiveInsert("done", "'cancelled'", "$2::text", "NULL")} RETURNING job_id)
     SELECT job_id AS id FROM archived`,
    [id, reason],
  );
  return rows.length > 0;
}
