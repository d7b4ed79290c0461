import type { Sql } from "../database";
import { HISTORY_COLUMNS, type JobRow } from "./rows";

/** An edge with its failure policy. */
export interface PolicyEdge {
  job_id: string;
  depends_on_id: string;
  on_failure: "cancel" | "ignore" | "fail";
}

/**
 * Archived cancelled jobs downstream of `id`, transitively through cancelled
 * jobs only (what `retryJob(id, { downstream: true })` restores).
 */
export async function cancelledDescendants(sql: Sql, id: string): Promise<string[]> {
  const rows = await sql.query<{ id: string }>(
    `WITH RECURSIVE d(id) AS (
       SELECT e.job_id FROM job_dependencies e
       JOIN job_history h ON h.job_id = e.job_id AND h.status = 'cancelled'
       WHERE e.depends_on_id = $1
       UNION
       SELECT e.job_id FROM d
       JOIN job_dependencies e ON e.depends_on_id = d.id
       JOIN job_history h ON h.job_id = e.job_id AND h.status = 'cancelled'
     )
     SELECT id FROM d WHERE id <> $1`,
    [id],
  );
  return rows.map((r) => r.id);
}

/** The edges of the given waiting jobs. */
export function edgesOf(sql: Sql, jobIds: readonly string[]): Promise<PolicyEdge[]> {
  return sql.query<PolicyEdge>(`SELECT job_id, depends_on_id, on_failure FROM job_dependencies WHERE job_id = ANY($1::text[])`, [jobIds]);
}

/** Ids of the jobs a job created from inside its run (live and archived), oldest first. */
export async function childIds(sql: Sql, parentId: string): Promise<string[]> {
  const rows = await sql.query<{ id: string }>(
    `SELECT id FROM (
       SELECT id, created_at FROM jobs WHERE parent_id = $1
       UNION ALL
       SELECT job_id, created_at FROM job_history WHERE parent_id = $1
     ) c ORDER BY created_at, id`,
    [parentId],
  );
  return rows.map((r) => r.id);
}

/** Finally failed jobs (the dead-letter queue), most recent first. */
export function deadLetters(sql: Sql, options: { since?: Date; ids?: readonly string[]; limit: number }): Promise<JobRow[]> {
  return sql.query<JobRow>(
    `SELECT ${HISTORY_COLUMNS} FROM job_history h
     WHERE h.status = 'failed' AND ($1::timestamptz IS NULL OR h.completed_at >= $1)
       AND ($2::text[] IS NULL OR h.job_id = ANY($2::text[]))
     ORDER BY h.completed_at DESC, h.id DESC
     LIMIT $3`,
    [options.since ?? null, options.ids ?? null, options.limit],
  );
}

/** A node of a drawn graph. */
export interface GraphNode {
  id: string;
  name: string;
  status: string;
}

/**
 * The dependency graph around a job: its ancestors and descendants (through
 * edges, live or archived ends), at most `limit` jobs, with the edges among
 * them. `tenant` limits it to one tenant's jobs.
 */
export async function graphAround(sql: Sql, id: string, tenant: string | null, limit: number): Promise<{ nodes: GraphNode[]; edges: Array<{ from: string; to: string; onFailure: string }> }> {
  const ids = await sql.query<{ id: string }>(
    `WITH RECURSIVE up(id, depth) AS (
       SELECT $1::text, 0
       UNION
       SELECT e.depends_on_id, up.depth + 1 FROM up JOIN job_dependencies e ON e.job_id = up.id WHERE up.depth < 50
     ), down(id, depth) AS (
       SELECT $1::text, 0
       UNION
       SELECT e.job_id, down.depth + 1 FROM down JOIN job_dependencies e ON e.depends_on_id = down.id WHERE down.depth < 50
     )
     SELECT id FROM (SELECT id FROM up UNION SELECT id FROM down) x LIMIT $2`,
    [id, limit],
  );
  const all = ids.map((r) => r.id);
  const nodes = await sql.query<GraphNode & { tenant: string | null }>(
    `SELECT id, name, status, tenant FROM jobs WHERE id = ANY($1::text[])
     UNION ALL SELECT job_id, name, status, tenant FROM job_history WHERE job_id = ANY($1::text[])`,
    [all],
  );
  const visible = nodes.filter((n) => tenant === null || n.tenant === tenant).map(({ id: nid, name, status }) => ({ id: nid, name, status }));
  const keep = new Set(visible.map((n) => n.id));
  const edges = await sql.query<{ from: string; to: string; onFailure: string }>(
    `SELECT depends_on_id AS "from", job_id AS "to", on_failure AS "onFailure" FROM job_dependencies
     WHERE job_id = ANY($1::text[]) AND depends_on_id = ANY($1::text[])`,
    [[...keep]],
  );
  return { nodes: visible, edges };
}
