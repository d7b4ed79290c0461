import type { Sql } from "../database";

/** A worker's registration. */
export interface WorkerRegistration {
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  executors: string[];
  /** Queues served (null: every queue). */
  queues: string[] | null;
  tags: string[];
}

/** Inserts (or refreshes) a worker's row. */
export async function registerWorker(sql: Sql, worker: WorkerRegistration): Promise<void> {
  await sql.query(
    `INSERT INTO workers (id, host, pid, concurrency, executors, queues, tags)
     VALUES ($1, $2, $3, $4, $5::jsonb, $6::text[], $7::text[])
     ON CONFLICT (id) DO UPDATE SET last_heartbeat_at = now(), status = 'running', queues = $6::text[], tags = $7::text[]`,
    [worker.id, worker.host, worker.pid, worker.concurrency, JSON.stringify(worker.executors), worker.queues, worker.tags],
  );
}

/** Records a heartbeat (re-registering a worker whose row was removed). */
export async function touchWorker(sql: Sql, worker: WorkerRegistration, status: "running" | "stopping"): Promise<void> {
  await sql.query(
    `INSERT INTO workers (id, host, pid, concurrency, executors, status, queues, tags)
     VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::text[], $8::text[])
     ON CONFLICT (id) DO UPDATE SET last_heartbeat_at = now(), status = $6`,
    [worker.id, worker.host, worker.pid, worker.concurrency, JSON.stringify(worker.executors), status, worker.queues, worker.tags],
  );
}

/** Removes a worker's row (it stopped). */
export async function deregisterWorker(sql: Sql, workerId: string): Promise<void> {
  await sql.query(`DELETE FROM workers WHERE id = $1`, [workerId]);
}

/** Removes rows of workers that have not sent a heartbeat for `seconds`. Returns their ids. */
export async function forgetDeadWorkers(sql: Sql, seconds: number): Promise<string[]> {
  const rows = await sql.query<{ id: string }>(
    `DELETE FROM workers WHERE last_heartbeat_at < now() - make_interval(secs => $1) RETURNING id`,
    [seconds],
  );
  return rows.map((r) => r.id);
}

/**
 * Claims the right to run a periodic task: true for exactly one caller per
 * interval, however many workers ask at once.
 */
export async function claimMaintenance(sql: Sql, task: string, intervalSeconds: number): Promise<boolean> {
  const rows = await sql.query<{ task: string }>(
    `INSERT INTO maintenance_runs (task, last_run_at) VALUES ($1, now())
     ON CONFLICT (task) DO UPDATE SET last_run_at = now()
       WHERE maintenance_runs.last_run_at <= now() - make_interval(secs => $2)
     RETURNING task`,
    [task, intervalSeconds],
  );
  return rows.length > 0;
}

/**
 * Whether `task` is out of its interval, read without writing: a cheap look
 * before {@link claimMaintenance} for a task that is asked about every second
 * (its upsert takes a row lock and a transaction id even when it claims
 * nothing).
 */
export async function maintenanceDue(sql: Sql, task: string, intervalSeconds: number): Promise<boolean> {
  const rows = await sql.query<{ due: boolean }>(
    `SELECT NOT EXISTS (
       SELECT 1 FROM maintenance_runs WHERE task = $1 AND last_run_at > now() - make_interval(secs => $2)
     ) AS due`,
    [task, intervalSeconds],
  );
  return rows[0]?.due === true;
}

/** Keeps every caller of {@link claimMaintenance} for `task` out for `seconds` more than its interval. */
export async function postponeMaintenance(sql: Sql, task: string, seconds: number): Promise<void> {
  await sql.query(`UPDATE maintenance_runs SET last_run_at = now() + make_interval(secs => $2) WHERE task = $1`, [task, seconds]);
}

/**
 * Results of finished jobs, by id (for a running job's `ctx.dependencyResults`):
 * the result of a completed job; `{ status, error }` for one that failed or was
 * cancelled (a dependency whose edge ignores failures).
 */
export async function dependencyResults(sql: Sql, ids: readonly string[]): Promise<Map<string, unknown>> {
  if (ids.length === 0) return new Map();
  const rows = await sql.query<{ id: string; result: unknown; status: string; error_message: string | null }>(
    // Prepared (read for every claimed batch with dependencies); the array is read through a
    // sub-select so the generic plan is kept (see takenIds in ./insert.ts).
    `SELECT job_id AS id, result, status, error_message FROM job_history WHERE job_id = ANY((SELECT $1::text[])::text[])`,
    [ids],
    { prepare: true },
  );
  return new Map(rows.map((r) => [r.id, r.status === "completed" ? r.result : { status: r.status, error: r.error_message }]));
}
