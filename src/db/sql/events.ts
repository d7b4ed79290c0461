import type { Sql } from "../database";
import { sql, statement, T } from "./template";

/** A stored event (see the job_events table). */
export interface EventRow {
  at: Date;
  event: string;
  worker_id: string | null;
  attempt: number | null;
  detail: Record<string, unknown> | null;
}

const storedEventsStatement = statement<{ jobId: string }, EventRow>(
  (p) => sql`SELECT at, event, worker_id, attempt, detail FROM ${T.job_events} WHERE job_id = ${p.jobId} ORDER BY id`,
);

/** A job's stored events, oldest first. */
export function storedEvents(db: Sql, jobId: string): Promise<EventRow[]> {
  return storedEventsStatement.all(db, { jobId });
}
