import type { Sql } from "../database";

/** A stored log line. */
export interface LogRow {
  id: string;
  job_id: string;
  attempt: number;
  at: Date;
  level: string;
  message: string;
  fields: Record<string, unknown> | null;
}

/** Appends log lines (one statement for the batch). */
export async function insertLogs(sql: Sql, lines: ReadonlyArray<Omit<LogRow, "id" | "at"> & { at: string }>): Promise<void> {
  if (lines.length === 0) return;
  await sql.query(
    `INSERT INTO job_logs (job_id, attempt, at, level, message, fields)
     SELECT job_id, attempt, at, level, message, fields
     FROM jsonb_to_recordset($1::jsonb) AS x(job_id text, attempt int, at timestamptz, level text, message text, fields jsonb)`,
    [JSON.stringify(lines)],
  );
}

/** A job's log lines after `afterId`, oldest first. */
export function readLogs(sql: Sql, jobId: string, afterId: string | null, limit: number): Promise<LogRow[]> {
  return sql.query<LogRow>(
    `SELECT id::text AS id, job_id, attempt, at, level, message, fields FROM job_logs
     WHERE job_id = $1 AND ($2::bigint IS NULL OR job_logs.id > $2::bigint) ORDER BY job_logs.id LIMIT $3`,
    [jobId, afterId, limit],
  );
}

/** Log lines of a tenant's jobs (or all jobs) after a line id, oldest first. */
export function tenantLogsAfter(sql: Sql, tenant: string | null, afterId: string, limit: number): Promise<LogRow[]> {
  return sql.query<LogRow>(
    `SELECT l.id::text AS id, l.job_id, l.attempt, l.at, l.level, l.message, l.fields FROM job_logs l
     WHERE l.id > $2::bigint AND ($1::text IS NULL
       OR EXISTS (SELECT 1 FROM jobs j WHERE j.id = l.job_id AND j.tenant = $1)
       OR EXISTS (SELECT 1 FROM job_history h WHERE h.job_id = l.job_id AND h.tenant = $1))
     ORDER BY l.id LIMIT $3`,
    [tenant, afterId, limit],
  );
}

/** The id of the newest log line (the start of a fresh stream). */
export async function lastLogId(sql: Sql): Promise<string> {
  const rows = await sql.query<{ id: string | null }>(`SELECT max(id)::text AS id FROM job_logs`);
  return rows[0]?.id ?? "0";
}
