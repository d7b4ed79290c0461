import type { Sql } from "../database";
import { CHANNEL, sql, statement, T } from "./template";

/**
 * Operator controls: paused queues, and what an operator asks of a worker
 * (quiet, drain, resume, a number of jobs at once). Each change tells the
 * workers at its commit on the schema's `workers_control` channel; a worker
 * also reads its requests back at every heartbeat.
 */

/** A queue as `listQueues` shows it. */
export interface QueueRow {
  name: string;
  paused: boolean;
  paused_at: Date | null;
  ready: number;
  running: number;
  /** Pending but not ready: waiting on dependencies, children or their run time. */
  waiting: number;
  /** Seconds the oldest ready job has been ready; null with none ready. */
  oldest_ready_seconds: number | null;
}

const pauseStatement = statement<{ name: string }, { name: string }>(
  (p) => sql`WITH ins AS (
       INSERT INTO ${T.paused_queues} (name) VALUES (${p.name}) ON CONFLICT (name) DO NOTHING RETURNING name
     )
     SELECT name, (SELECT pg_notify(${CHANNEL.control}, json_build_object('queue', ${p.name}::text, 'paused', true)::text)) IS NULL AS told FROM ins`,
);

const resumeStatement = statement<{ name: string }, { name: string }>(
  (p) => sql`WITH del AS (
       DELETE FROM ${T.paused_queues} WHERE name = ${p.name} RETURNING name
     )
     SELECT name,
       (SELECT pg_notify(${CHANNEL.control}, json_build_object('queue', ${p.name}::text, 'paused', false)::text)) IS NULL AS told,
       (SELECT pg_notify(${CHANNEL.ready}, '')) IS NULL AS woke
     FROM del`,
);

/** Pauses a queue; returns false if it was paused already. */
export async function pauseQueue(db: Sql, name: string): Promise<boolean> {
  return (await pauseStatement.all(db, { name })).length > 0;
}

/** Resumes a queue (and wakes the workers); returns false if it was not paused. */
export async function resumeQueue(db: Sql, name: string): Promise<boolean> {
  return (await resumeStatement.all(db, { name })).length > 0;
}

const pausedStatement = statement<Record<string, never>, { name: string }>(() => sql`SELECT name FROM ${T.paused_queues} ORDER BY name`);

/** The paused queues' names. */
export async function pausedQueues(db: Sql): Promise<string[]> {
  return (await pausedStatement.all(db, {})).map((r) => r.name);
}

const queuesStatement = statement<Record<string, never>, QueueRow>(
  () => sql`WITH live AS (
       SELECT queue AS name,
         count(*) FILTER (WHERE status = 'pending' AND pending_dependencies = 0 AND run_at <= now())::int AS ready,
         count(*) FILTER (WHERE status = 'running')::int AS running,
         count(*) FILTER (WHERE status = 'pending' AND (pending_dependencies > 0 OR run_at > now()))::int AS waiting,
         EXTRACT(EPOCH FROM now() - min(GREATEST(run_at, COALESCE(ready_at, created_at)))
           FILTER (WHERE status = 'pending' AND pending_dependencies = 0 AND run_at <= now()))::float8 AS oldest_ready_seconds
       FROM ${T.jobs} GROUP BY queue
     )
     SELECT COALESCE(l.name, p.name) AS name, p.name IS NOT NULL AS paused, p.paused_at,
       COALESCE(l.ready, 0) AS ready, COALESCE(l.running, 0) AS running, COALESCE(l.waiting, 0) AS waiting, l.oldest_ready_seconds
     FROM live l FULL JOIN ${T.paused_queues} p ON p.name = l.name
     ORDER BY 1`,
);

/** Every queue with live jobs or paused, with its counts. */
export function queueRows(db: Sql): Promise<QueueRow[]> {
  return queuesStatement.all(db, {});
}

/** What an operator may ask of a worker. */
export type WorkerRequest = "active" | "quiet" | "drain";

const requestStatement = statement<{ id: string; state: WorkerRequest | null; concurrency: number | null }, { id: string }>(
  (p) => sql`WITH u AS (
       UPDATE ${T.workers} SET requested_state = COALESCE(${p.state}::text, requested_state),
         requested_concurrency = COALESCE(${p.concurrency}::int, requested_concurrency)
       WHERE id = ${p.id} AND status <> 'stopping'
       RETURNING id
     )
     SELECT id, (SELECT pg_notify(${CHANNEL.control}, json_build_object('worker', id)::text)) IS NULL AS told FROM u`,
);

/** Records a request for a running worker and tells it; false if no such worker runs. */
export async function requestOfWorker(db: Sql, id: string, request: { state?: WorkerRequest; concurrency?: number }): Promise<boolean> {
  return (await requestStatement.all(db, { id, state: request.state ?? null, concurrency: request.concurrency ?? null })).length > 0;
}

/** A worker's pending requests, as it reads them. */
export interface WorkerRequests {
  requested_state: WorkerRequest | null;
  requested_concurrency: number | null;
}

const readRequestsStatement = statement<{ id: string }, WorkerRequests>(
  (p) => sql`SELECT requested_state, requested_concurrency FROM ${T.workers} WHERE id = ${p.id}`,
);

/** What operators asked of worker `id` (undefined when its row is gone). */
export function workerRequests(db: Sql, id: string): Promise<WorkerRequests | undefined> {
  return readRequestsStatement.one(db, { id });
}
