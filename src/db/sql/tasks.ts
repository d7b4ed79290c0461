import type { Sql } from "../database";
import { sql, statement, T } from "./template";

/** A task row with its jobs counted by status (live and archived). */
export interface TaskRow {
  id: string;
  tenant: string | null;
  name: string;
  total_jobs: number;
  current_step: unknown;
  created_at: Date;
  updated_at: Date;
  pending: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
}

const insertStatement = statement<{ id: string; tenant: string | null; name: string; totalJobs: number }, never>(
  (p) => sql`INSERT INTO ${T.tasks} (id, tenant, name, total_jobs) VALUES (${p.id}, ${p.tenant}, ${p.name}, ${p.totalJobs})`,
);

/** Inserts a task. */
export async function insertTask(db: Sql, task: { id: string; tenant: string | null; name: string; totalJobs: number }): Promise<void> {
  await insertStatement.all(db, task);
}

const readStatement = statement<{ id: string }, TaskRow>(
  (p) => sql`SELECT t.id, t.tenant, t.name, t.total_jobs, t.current_step, t.created_at, t.updated_at,
       (SELECT count(*) FROM ${T.jobs} j WHERE j.task_id = t.id AND j.status = 'pending')::int AS pending,
       (SELECT count(*) FROM ${T.jobs} j WHERE j.task_id = t.id AND j.status = 'running')::int AS running,
       (SELECT count(*) FROM ${T.job_history} h WHERE h.task_id = t.id AND h.status = 'completed')::int AS completed,
       (SELECT count(*) FROM ${T.job_history} h WHERE h.task_id = t.id AND h.status = 'failed')::int AS failed,
       (SELECT count(*) FROM ${T.job_history} h WHERE h.task_id = t.id AND h.status = 'cancelled')::int AS cancelled
     FROM ${T.tasks} t WHERE t.id = ${p.id}`,
);

/** A task and its jobs' counts per status (reads jobs_task_idx and job_history_task_idx). */
export function readTask(db: Sql, id: string): Promise<TaskRow | undefined> {
  return readStatement.one(db, { id });
}

const setStepStatement = statement<{ id: string; step: string }, { id: string }>(
  (p) => sql`UPDATE ${T.tasks} SET current_step = ${p.step}::jsonb, updated_at = clock_timestamp() WHERE id = ${p.id} RETURNING id`,
);

/** Records a task's current step. Returns whether the task exists. */
export async function setTaskStep(db: Sql, id: string, step: unknown): Promise<boolean> {
  return (await setStepStatement.all(db, { id, step: JSON.stringify(step) })).length > 0;
}
