import type { Sql } from "../database";
import { archiveInsert } from "./rows";

/** A job that ended failed or cancelled, whose dependents must be cancelled. */
export interface CancelRoot {
  id: string;
  status: "failed" | "cancelled";
}

/**
 * Cancels every pending job downstream of `roots`, transitively, archiving
 * each with a message naming the job that caused it. Repeats from the newly
 * cancelled jobs until a round finds nothing, so that a dependent created
 * concurrently (invisible to the first statement's snapshot) is caught too.
 * Returns the ids cancelled.
 */
export async function cancelDownstream(sql: Sql, roots: readonly CancelRoot[]): Promise<string[]> {
  const cancelled: string[] = [];
  let frontier: Array<{ id: string; root: string; root_status: string }> = roots.map((r) => ({ id: r.id, root: r.id, root_status: r.status }));
  while (frontier.length > 0) {
    const rows = await sql.query<{ id: string; root: string; root_status: string }>(
      `WITH RECURSIVE start AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id text, root text, root_status text)
       ), children AS (
         -- ANY($2) tells the planner how many ids there are (jsonb_to_recordset would not).
         SELECT d.job_id, d.depends_on_id FROM job_dependencies d WHERE d.depends_on_id = ANY($2::text[])
       ), down(id, root, root_status) AS (
         SELECT c.job_id, s.root, s.root_status FROM children c JOIN start s ON s.id = c.depends_on_id
         UNION
         SELECT d.job_id, down.root, down.root_status FROM job_dependencies d JOIN down ON d.depends_on_id = down.id
       ), victims AS (
         SELECT DISTINCT ON (id) id, root, root_status FROM down ORDER BY id, root
       ), locked AS (
         SELECT j.id, v.root, v.root_status FROM jobs j JOIN victims v ON v.id = j.id
         WHERE j.status = 'pending' ORDER BY j.id FOR UPDATE OF j
       ), moved AS (
         DELETE FROM jobs j USING locked l
         WHERE j.id = l.id AND j.status = 'pending'
         RETURNING j.*, l.root, l.root_status
       ), archived AS (
         ${archiveInsert("moved", "'cancelled'", `format('cancelled because job %s %s', to_json(s.root)::text, s.root_status)`, "NULL")}
       )
       -- archived runs to completion whether or not it is read (as every data-modifying CTE does).
       SELECT m.id, m.root, m.root_status FROM moved m`,
      [JSON.stringify(frontier), frontier.map((f) => f.id)],
    );
    for (const row of rows) cancelled.push(row.id);
    frontier = rows;
  }
  return cancelled;
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
