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
