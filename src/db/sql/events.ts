import type { Sql } from "../database";

/** A stored event (see the job_events table). */
export interface EventRow {
  at: Date;
  event: string;
  worker_id: string | null;
  attempt: number | null;
  detail: Record<string, unknown> | null;
}

/** A job's stored events, oldest first. */
export function storedEvents(sql: Sql, jobId: string): Promise<EventRow[]> {
  return sql.query<EventRow>(`SELECT at, event, worker_id, attempt, detail FROM job_events WHERE job_id = $1 ORDER BY id`, [jobId]);
}
