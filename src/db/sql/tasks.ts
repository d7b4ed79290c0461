import type { Sql } from "../database";

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

/** Inserts a task. */
export async function insertTask(sql: Sql, task: { id: string; tenant: string | null; name: string; totalJobs: number }): Promise<void> {
  await sql.query(`INSERT INTO tasks (id, tenant, name, total_jobs) VALUES ($1, $2, $3, $4)`, [task.id, task.tenant, task.name, task.totalJobs]);
}

/** A task and its jobs' counts per status (reads jobs_task_idx and job_history_task_idx). */
export async function readTask(sql: Sql, id: string): Promise<TaskRow | undefined> {
  const rows = await sql.query<TaskRow>(
    `SELECT t.id, t.tenant, t.name, t.total_jobs, t.current_step, t.created_at, t.updated_at,
       (SELECT count(*) FROM jobs j WHERE j.task_id = t.id AND j.status = 'pending')::int AS pending,
       (SELECT count(*) FROM jobs j WHERE j.task_id = t.id AND j.status = 'running')::int AS running,
       (SELECT count(*) FROM job_history h WHERE h.task_id = t.id AND h.status = 'completed')::int AS completed,
       (SELECT count(*) FROM job_history h WHERE h.task_id = t.id AND h.status = 'failed')::int AS failed,
       (SELECT count(*) FROM job_history h WHERE h.task_id = t.id AND h.status = 'cancelled')::int AS cancelled
     FROM tasks t WHERE t.id = $1`,
    [id],
  );
  return rows[0];
}

/** Records a task's current step. Returns whether the task exists. */
export async function setTaskStep(sql: Sql, id: string, step: unknown): Promise<boolean> {
  const rows = await sql.query<{ id: string }>(
    `UPDATE tasks SET current_step = $2::jsonb, updated_at = clock_timestamp() WHERE id = $1 RETURNING id`,
    [id, JSON.stringify(step)],
  );
  return rows.length > 0;
}
