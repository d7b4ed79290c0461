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

const tenantLogsStatement = statement<{ tenant: string | null; after: string; limit: number }, LogRow>(
  (p) => sql`SELECT l.id::text AS id, l.job_id, l.attempt, l.at, l.level, l.message, l.fields FROM ${T.job_logs} l
     WHERE l.id > ${p.after}::bigint AND (${p.tenant}::text IS NULL
       OR EXISTS (SELECT 1 FROM ${T.jobs} j WHERE j.id = l.job_id AND j.tenant = ${p.tenant})
       OR EXISTS (SELECT 1 FROM ${T.job_history} h WHERE h.job_id = l.job_id AND h.tenant = ${p.tenant}))
     ORDER BY l.id LIMIT ${p.limit}`,
);

/** Log lines of a tenant's jobs (or all jobs) after a line id, oldest first. */
export function tenantLogsAfter(db: Sql, tenant: string | null, afterId: string, limit: number): Promise<LogRow[]> {
  return tenantLogsStatement.all(db, { tenant, after: afterId, limit });
}

const lastLogIdStatement = statement<Record<string, never>, { id: string | null }>(() => sql`SELECT max(id)::text AS id FROM ${T.job_logs}`);

/** The id of the newest log line (the start of a fresh stream). */
export async function lastLogId(db: Sql): Promise<string> {
  return (await lastLogIdStatement.one(db, {}))?.id ?? "0";
}
