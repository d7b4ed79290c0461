import type { Sql } from "../database";
import { sql, statement, T } from "./template";
import { HISTORY_COLUMNS, type JobRow } from "./rows";

/** An edge with its failure policy. */
export interface PolicyEdge {
  job_id: string;
  depends_on_id: string;
  on_failure: "cancel" | "ignore" | "fail";
}

const cancelledDescendantsStatement = statement<{ id: string }, { id: string }>(
  (p) => sql`WITH RECURSIVE d(id) AS (
       SELECT e.job_id FROM ${T.job_dependencies} e
       JOIN ${T.job_history} h ON h.job_id = e.job_id AND h.status = 'cancelled'
       WHERE e.depends_on_id = ${p.id} AND e.on_failure <> 'wait'
       UNION
       SELECT e.job_id FROM d
       JOIN ${T.job_dependencies} e ON e.depends_on_id = d.id AND e.on_failure <> 'wait'
       JOIN ${T.job_history} h ON h.job_id = e.job_id AND h.status = 'cancelled'
     )
     SELECT id FROM d WHERE id <> ${p.id}`,
);

/**
 * Archived cancelled jobs downstream of `id` through dependency edges,
 * transitively through cancelled jobs only (what `retryJob(id, { downstream:
 * true })` restores). A parent waiting for `id` is not downstream of it.
 */
export async function cancelledDescendants(db: Sql, id: string): Promise<string[]> {
  return (await cancelledDescendantsStatement.all(db, { id })).map((r) => r.id);
}

const edgesOfStatement = statement<{ ids: readonly string[] }, PolicyEdge>(
  (p) => sql`SELECT job_id, depends_on_id, on_failure FROM ${T.job_dependencies} WHERE job_id = ANY(${p.ids}::text[]) AND on_failure <> 'wait'`,
);

/** The dependency edges of the given waiting jobs (not a parked parent's `wait` edges to its children). */
export function edgesOf(db: Sql, jobIds: readonly string[]): Promise<PolicyEdge[]> {
  return edgesOfStatement.all(db, { ids: jobIds });
}

const childIdsStatement = statement<{ parentId: string }, { id: string }>(
  (p) => sql`SELECT id FROM (
       SELECT id, created_at FROM ${T.jobs} WHERE parent_id = ${p.parentId}
       UNION ALL
       SELECT job_id, created_at FROM ${T.job_history} WHERE parent_id = ${p.parentId}
     ) c ORDER BY created_at, id`,
);

/** Ids of the jobs a job created from inside its run (live and archived), oldest first. */
export async function childIds(db: Sql, parentId: string): Promise<string[]> {
  return (await childIdsStatement.all(db, { parentId })).map((r) => r.id);
}

const deadLettersStatement = statement<{ since: Date | null; ids: readonly string[] | null; limit: number }, JobRow>(
  (p) => sql`SELECT ${HISTORY_COLUMNS} FROM ${T.job_history} h
     WHERE h.status = 'failed' AND (${p.since}::timestamptz IS NULL OR h.completed_at >= ${p.since})
       AND (${p.ids}::text[] IS NULL OR h.job_id = ANY(${p.ids}::text[]))
     ORDER BY h.completed_at DESC, h.id DESC
     LIMIT ${p.limit}`,
);

/** Finally failed jobs (the dead-letter queue), most recent first. */
export function deadLetters(db: Sql, options: { since?: Date; ids?: readonly string[]; limit: number }): Promise<JobRow[]> {
  return deadLettersStatement.all(db, { since: options.since ?? null, ids: options.ids ?? null, limit: options.limit });
}

/** A node of a drawn graph. */
export interface GraphNode {
  id: string;
  name: string;
  status: string;
}

/**
 * The dependency graph around a job: its ancestors and descendants (through
 * edges, live or archived ends), at most `limit` jobs (the job and the
 * nearest ones), with the edges among them. `tenant` limits it to one tenant's jobs.
 */
export async function graphAround(db: Sql, id: string, tenant: string | null, limit: number): Promise<{ nodes: GraphNode[]; edges: Array<{ from: string; to: string; onFailure: string }> }> {
  const all = (await graphIdsStatement.all(db, { id, limit })).map((r) => r.id);
  const nodes = await graphNodesStatement.all(db, { ids: all });
  const visible = nodes.filter((n) => tenant === null || n.tenant === tenant).map(({ id: nid, name, status }) => ({ id: nid, name, status }));
  const edges = await graphEdgesStatement.all(db, { ids: visible.map((n) => n.id) });
  return { nodes: visible, edges };
}

const graphIdsStatement = statement<{ id: string; limit: number }, { id: string }>(
  (p) => sql`WITH RECURSIVE up(id, depth) AS (
       SELECT ${p.id}::text, 0
       UNION
       SELECT e.depends_on_id, up.depth + 1 FROM up JOIN ${T.job_dependencies} e ON e.job_id = up.id WHERE up.depth < 50
     ), down(id, depth) AS (
       SELECT ${p.id}::text, 0
       UNION
       SELECT e.job_id, down.depth + 1 FROM down JOIN ${T.job_dependencies} e ON e.depends_on_id = down.id WHERE down.depth < 50
     )
     -- The job itself first, then the nearest jobs: a graph cut at the limit stays in one piece around it.
     SELECT id FROM (SELECT id, depth FROM up UNION ALL SELECT id, depth FROM down) x GROUP BY id ORDER BY min(depth), id LIMIT ${p.limit}`,
);

const graphNodesStatement = statement<{ ids: string[] }, GraphNode & { tenant: string | null }>(
  (p) => sql`SELECT id, name, status, tenant FROM ${T.jobs} WHERE id = ANY(${p.ids}::text[])
     UNION ALL SELECT job_id, name, status, tenant FROM ${T.job_history} WHERE job_id = ANY(${p.ids}::text[])`,
);

const graphEdgesStatement = statement<{ ids: string[] }, { from: string; to: string; onFailure: string }>(
  (p) => sql`SELECT depends_on_id AS "from", job_id AS "to", on_failure AS "onFailure" FROM ${T.job_dependencies}
     WHERE job_id = ANY(${p.ids}::text[]) AND depends_on_id = ANY(${p.ids}::text[])`,
);
