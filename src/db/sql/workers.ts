import type { Sql } from "../database";
import type { WorkerRequests } from "./control";
import { sql, statement, T } from "./template";

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
  /** Tenants served (null: every tenant). */
  tenants: string[] | null;
}

/** What a worker reports about itself: running, quiet (claims nothing), draining (exits when idle), stopping. */
export type WorkerStatus = "running" | "quiet" | "draining" | "stopping";

type RegistrationParams = Omit<WorkerRegistration, "executors"> & { executors: string; status: string };

// A (re-)registration clears what operators asked of an earlier process with the same id.
const upsertWorkerStatement = statement<RegistrationParams & { refresh: boolean }, WorkerRequests>(
  (p) => sql`INSERT INTO ${T.workers} AS w (id, host, pid, concurrency, executors, status, queues, tags, tenants)
     VALUES (${p.id}, ${p.host}, ${p.pid}, ${p.concurrency}, ${p.executors}::jsonb, ${p.status}, ${p.queues}::text[], ${p.tags}::text[], ${p.tenants}::text[])
     ON CONFLICT (id) DO UPDATE SET last_heartbeat_at = now(), status = ${p.status}, concurrency = ${p.concurrency},
       queues = CASE WHEN ${p.refresh}::boolean THEN ${p.queues}::text[] ELSE w.queues END,
       tags = CASE WHEN ${p.refresh}::boolean THEN ${p.tags}::text[] ELSE w.tags END,
       tenants = CASE WHEN ${p.refresh}::boolean THEN ${p.tenants}::text[] ELSE w.tenants END,
       requested_state = CASE WHEN ${p.refresh}::boolean THEN NULL ELSE w.requested_state END,
       requested_concurrency = CASE WHEN ${p.refresh}::boolean THEN NULL ELSE w.requested_concurrency END
     RETURNING requested_state, requested_concurrency`,
);

function registrationValues(worker: WorkerRegistration, status: string, refresh: boolean): RegistrationParams & { refresh: boolean } {
  return { ...worker, executors: JSON.stringify(worker.executors), status, refresh };
}

/** Inserts (or refreshes) a worker's row. */
export async function registerWorker(db: Sql, worker: WorkerRegistration): Promise<void> {
  await upsertWorkerStatement.all(db, registrationValues(worker, "running", true));
}

/**
 * Records a heartbeat with the worker's status and concurrency
 * (re-registering a worker whose row was removed), and returns what
 * operators asked of it: the backstop when a control notification is lost.
 */
export async function touchWorker(db: Sql, worker: WorkerRegistration, status: WorkerStatus): Promise<WorkerRequests | undefined> {
  return upsertWorkerStatement.one(db, registrationValues(worker, status, false));
}

const deregisterStatement = statement<{ id: string }, never>((p) => sql`DELETE FROM ${T.workers} WHERE id = ${p.id}`);

/** Removes a worker's row (it stopped). */
export async function deregisterWorker(db: Sql, workerId: string): Promise<void> {
  await deregisterStatement.all(db, { id: workerId });
}

const forgetStatement = statement<{ seconds: number }, { id: string }>(
  (p) => sql`DELETE FROM ${T.workers} WHERE last_heartbeat_at < now() - make_interval(secs => ${p.seconds}) RETURNING id`,
);

/** Removes rows of workers that have not sent a heartbeat for `seconds`. Returns their ids. */
export async function forgetDeadWorkers(db: Sql, seconds: number): Promise<string[]> {
  return (await forgetStatement.all(db, { seconds })).map((r) => r.id);
}

const claimMaintenanceStatement = statement<{ task: string; seconds: number }, { task: string }>(
  (p) => sql`INSERT INTO ${T.maintenance_runs} AS m (task, last_run_at) VALUES (${p.task}, now())
     ON CONFLICT (task) DO UPDATE SET last_run_at = now()
       WHERE m.last_run_at <= now() - make_interval(secs => ${p.seconds})
     RETURNING task`,
);

/**
 * Claims the right to run a periodic task: true for exactly one caller per
 * interval, however many workers ask at once.
 */
export async function claimMaintenance(db: Sql, task: string, intervalSeconds: number): Promise<boolean> {
  return (await claimMaintenanceStatement.all(db, { task, seconds: intervalSeconds })).length > 0;
}

const maintenanceDueStatement = statement<{ task: string; seconds: number }, { due: boolean }>(
  (p) => sql`SELECT NOT EXISTS (
       SELECT 1 FROM ${T.maintenance_runs} WHERE task = ${p.task} AND last_run_at > now() - make_interval(secs => ${p.seconds})
     ) AS due`,
);

/**
 * Whether `task` is out of its interval, read without writing: a cheap look
 * before {@link claimMaintenance} for a task that is asked about every second
 * (its upsert takes a row lock and a transaction id even when it claims
 * nothing).
 */
export async function maintenanceDue(db: Sql, task: string, intervalSeconds: number): Promise<boolean> {
  return (await maintenanceDueStatement.one(db, { task, seconds: intervalSeconds }))?.due === true;
}

const postponeStatement = statement<{ task: string; seconds: number }, never>(
  (p) => sql`UPDATE ${T.maintenance_runs} SET last_run_at = now() + make_interval(secs => ${p.seconds}) WHERE task = ${p.task}`,
);

/** Keeps every caller of {@link claimMaintenance} for `task` out for `seconds` more than its interval. */
export async function postponeMaintenance(db: Sql, task: string, seconds: number): Promise<void> {
  await postponeStatement.all(db, { task, seconds });
}

// Prepared (read for every claimed batch with dependencies); the array is read through a
// sub-select so the generic plan is kept (as takenIds in ./insert.ts).
const dependencyResultsStatement = statement<{ ids: readonly string[] }, { id: string; result: unknown; status: string; error_message: string | null }>(
  (p) => sql`SELECT job_id AS id, result, status, error_message FROM ${T.job_history} WHERE job_id = ANY((SELECT ${p.ids}::text[])::text[])`,
  { prepare: true },
);

/**
 * Results of finished jobs, by id (for a running job's `ctx.dependencyResults`):
 * the result of a completed job; `{ status, error }` for one that failed or was
 * cancelled (a dependency whose edge ignores failures).
 */
export async function dependencyResults(db: Sql, ids: readonly string[]): Promise<Map<string, unknown>> {
  if (ids.length === 0) return new Map();
  const rows = await dependencyResultsStatement.all(db, { ids });
  return new Map(rows.map((r) => [r.id, r.status === "completed" ? r.result : { status: r.status, error: r.error_message }]));
}
