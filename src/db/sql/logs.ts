import type { Sql } from "../database";
import { sql, statement, T } from "./template";

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

const insertLogsStatement = statement<{ lines: string }, never>(
  (p) => sql`INSERT INTO ${T.job_logs} (job_id, attempt, at, level, message, fields)
     SELECT job_id, attempt, at, level, message, fields
     FROM jsonb_to_recordset(${p.lines}::jsonb) AS x(job_id text, attempt int, at timestamptz, level text, message text, fields jsonb)`,
);

/** Appends log lines (one statement for the batch). */
export async function insertLogs(db: Sql, lines: ReadonlyArray<Omit<LogRow, "id" | "at"> & { at: string }>): Promise<void> {
  if (lines.length === 0) return;
  await insertLogsStatement.all(db, { lines: JSON.stringify(lines) });
}

const readLogsStatement = statement<{ jobId: string; after: string | null; limit: number }, LogRow>(
  (p) => sql`SELECT l.id::text AS id, l.job_id, l.attempt, l.at, l.level, l.message, l.fields FROM ${T.job_logs} l
     WHERE l.job_id = ${p.jobId} AND (${p.after}::bigint IS NULL OR l.id > ${p.after}::bigint) ORDER BY l.id LIMIT ${p.limit}`,
);

/** A job's log lines after `afterId`, oldest first. */
export function readLogs(db: Sql, jobId: string, afterId: string | null, limit: number): Promise<LogRow[]> {
  return readLogsStatement.all(db, { jobId, after: afterId, limit });
}
