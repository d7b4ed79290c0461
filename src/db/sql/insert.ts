import type { Sql } from "../database";
import { HISTORY_COLUMNS, streamEvents, type JobRow } from "./rows";
import { CHANNEL, sql, statement, T, type Fragment } from "./template";

/** A job row to insert, already validated: a {@link JobRow}'s own columns, the run time as an ISO timestamp (null for the database's now()). */
export type NewJobRow = Pick<
  JobRow,
  | "id" | "job_type" | "name" | "description" | "dependencies" | "max_retries" | "priority" | "pending_dependencies" | "timeout_seconds"
  | "queue" | "tenant" | "rate_limit_key" | "rate_limit_cost" | "concurrency_key" | "tags" | "task_id" | "parent_id"
  | "delegation_key" | "detached" | "schedule_name"
> & { payload: unknown; run_at: string | null; scheduled_for: string | null };

/** A dependency edge: `job_id` waits on `depends_on_id`. */
export interface EdgeRow {
  job_id: string;
  depends_on_id: string;
  on_failure: "cancel" | "ignore" | "fail";
}

const lockLiveStatement = statement<{ ids: readonly string[] }, { id: string; status: string }>(
  (p) => sql`SELECT id, status FROM ${T.jobs} WHERE id = ANY(${p.ids}::text[]) ORDER BY id FOR SHARE`,
);

/**
 * Share-locks the live jobs among `jobIds`, in id order, and returns their
 * statuses. Holding the lock until commit makes a concurrent completion of
 * one of them wait, so that its dependent-decrement sees the new edges.
 */
export function lockLiveJobs(db: Sql, jobIds: readonly string[]): Promise<Array<{ id: string; status: string }>> {
  return lockLiveStatement.all(db, { ids: jobIds });
}

const archivedStatusesStatement = statement<{ ids: readonly string[] }, { id: string; status: string }>(
  (p) => sql`SELECT job_id AS id, status FROM ${T.job_history} WHERE job_id = ANY(${p.ids}::text[])`,
);

/** Statuses of the archived jobs among `jobIds`. */
export function archivedStatuses(db: Sql, jobIds: readonly string[]): Promise<Array<{ id: string; status: string }>> {
  return archivedStatusesStatement.all(db, { ids: jobIds });
}

/**
 * The ids in the text array `ids` taken by a live or archived job: index
 * probes by primary key (an id array, not a join the planner might hash).
 * The array is read through a sub-select so that the planner never sees its
 * length, and a prepared statement's generic plan costs the same as a custom
 * plan for one id (docs/BENCHMARKS.md).
 */
function takenIds(ids: Fragment): Fragment {
  return sql`SELECT id FROM ${T.jobs} WHERE id = ANY((SELECT ${ids}::text[])::text[])
     UNION
     SELECT job_id FROM ${T.job_history} WHERE job_id = ANY((SELECT ${ids}::text[])::text[])`;
}

const existingIdsStatement = statement<{ ids: readonly string[] }, { id: string }>((p) => takenIds(sql`${p.ids}`));

/** The ids among `jobIds` that are taken by a live or archived job. */
export async function existingIds(db: Sql, jobIds: readonly string[]): Promise<string[]> {
  return (await existingIdsStatement.all(db, { ids: jobIds })).map((r) => r.id);
}

function inputCte(json: Fragment): Fragment {
  return sql`input AS (
       SELECT * FROM jsonb_to_recordset(${json}::jsonb) AS x(
         id text, job_type text, name text, description text, payload jsonb, dependencies jsonb,
         max_retries int, priority int, run_at timestamptz, pending_dependencies int, timeout_seconds int,
         queue text, tenant text, rate_limit_key text, rate_limit_cost int, concurrency_key text, tags text[],
         task_id text, parent_id text, delegation_key text, detached boolean, schedule_name text, scheduled_for timestamptz)
     )`;
}

const INSERT_FROM_INPUT = sql`INSERT INTO ${T.jobs} (id, job_type, name, description, payload, dependencies, max_retries, priority,
                         run_at, pending_dependencies, timeout_seconds, queue, tenant, rate_limit_key,
                         rate_limit_cost, concurrency_key, tags, task_id, parent_id, delegation_key, detached,
                         schedule_name, scheduled_for)
       SELECT id, job_type, name, description, payload, COALESCE(dependencies, '[]'), max_retries, priority,
              COALESCE(run_at, now()), pending_dependencies, timeout_seconds, queue, tenant, rate_limit_key,
              rate_limit_cost, concurrency_key, COALESCE(tags, '{}'), task_id, parent_id, delegation_key,
              COALESCE(detached, false), schedule_name, scheduled_for
       FROM input`;

/**
 * The batch as the JSON that {@link inputCte} reads: each row without its
 * unset optional columns (null) and without empty `dependencies` and `tags`
 * (absent keys read as NULL, and the insert puts the empty arrays back), which
 * PostgreSQL reads faster (docs/BENCHMARKS.md). The payload is always sent as
 * it is, JSON `null` included.
 */
function inputJson(rows: readonly NewJobRow[]): string {
  // One object literal per row, in one shape (JSON.stringify leaves out the keys set to undefined): the cheapest build measured.
  return JSON.stringify(
    rows.map((r) => ({
      id: r.id,
      job_type: r.job_type,
      name: r.name,
      description: unset(r.description),
      payload: r.payload,
      dependencies: r.dependencies.length === 0 ? undefined : r.dependencies,
      max_retries: r.max_retries,
      priority: r.priority,
      run_at: unset(r.run_at),
      pending_dependencies: r.pending_dependencies,
      timeout_seconds: unset(r.timeout_seconds),
      queue: r.queue,
      tenant: unset(r.tenant),
      rate_limit_key: unset(r.rate_limit_key),
      rate_limit_cost: r.rate_limit_cost,
      concurrency_key: unset(r.concurrency_key),
      tags: r.tags.length === 0 ? undefined : r.tags,
      task_id: unset(r.task_id),
      parent_id: unset(r.parent_id),
      delegation_key: unset(r.delegation_key),
      detached: r.detached ? true : undefined,
      schedule_name: unset(r.schedule_name),
      scheduled_for: unset(r.scheduled_for),
    })),
  );
}

/** A null column as an absent key (undefined, which JSON.stringify leaves out). */
function unset<T>(value: T | null): T | undefined {
  return value === null ? undefined : value;
}

const insertJobsStatement = statement<{ rows: string }, { id: string; run_at: Date; created_at: Date }>(
  (p) => sql`WITH ${inputCte(sql`${p.rows}`)}, j AS (
       ${INSERT_FROM_INPUT}
       RETURNING id, tenant, name, run_at, created_at
     ), se AS (
       ${streamEvents("j", sql`'pending'`, sql`0`)}
     )
     SELECT id, run_at, created_at FROM j`,
);

/**
 * Inserts pending jobs in one statement and returns them. As in
 * {@link insertJobsIfNew}, only what the server sets comes back (the run time
 * and the creation time); the rest of each row is the input.
 */
export async function insertJobs(db: Sql, rows: readonly NewJobRow[]): Promise<JobRow[]> {
  return fromServer(rows, await insertJobsStatement.all(db, { rows: inputJson(rows) }));
}

/** The inserted rows: each input with the times the server set (from `written`, by id). */
function fromServer(rows: readonly NewJobRow[], written: ReadonlyArray<{ id: string | null; run_at: Date | null; created_at: Date | null }>): JobRow[] {
  const byId = new Map(written.map((r) => [r.id as string, r]));
  return rows.map((input) => {
    const server = byId.get(input.id);
    if (!server?.run_at || !server.created_at) throw new Error(`insert: job ${JSON.stringify(input.id)} was not written`);
    return insertedRow(input, server.run_at, server.created_at);
  });
}

/**
 * Jobs without dependencies, in one statement and its own transaction: the
 * duplicate-id check of `checkIds` (live and history; the ids the caller
 * supplied, since a freshly generated UUID cannot be taken) and the insert
 * share one snapshot, in which a job being archived is either still live or
 * already in history, so a taken id is always seen. Inserts nothing if any id
 * is taken and returns the taken ids instead. (A concurrent insert of the
 * same new id fails on the primary key.) Only what the server sets comes back
 * (the run time and the creation time); the rest of each row is the input,
 * objects included (the payload in a `NewJobRow` is already validation's copy
 * of the caller's).
 *
 * With `notify`, the statement also tells listening workers that jobs are
 * ready (at its commit), if it inserted a job whose run time is not after the
 * server's `now()` (the statement's start); `sent` says whether it did (see
 * `ReadyNotifier.carry`).
 */
export async function insertJobsIfNew(
  db: Sql,
  rows: readonly NewJobRow[],
  checkIds: readonly string[],
  options: { notify?: boolean } = {},
): Promise<{ rows: JobRow[]; taken: string[]; sent: boolean }> {
  const out = await insertIfNewStatement.all(db, { rows: inputJson(rows), check: checkIds, notify: options.notify === true });
  const taken = out[0]?.taken ?? null;
  if (taken !== null) return { rows: [], taken, sent: false };
  return { rows: fromServer(rows, out), taken: [], sent: (out[0]?.sent ?? 0) > 0 };
}

const insertIfNewStatement = statement<
  { rows: string; check: readonly string[]; notify: boolean },
  { taken: string[] | null; id: string | null; run_at: Date | null; created_at: Date | null; sent: number }
>(
  (p) => sql`WITH ${inputCte(sql`${p.rows}`)}, taken AS MATERIALIZED (
       ${takenIds(sql`${p.check}`)}
     ), j AS (
       ${INSERT_FROM_INPUT}
       WHERE NOT EXISTS (SELECT 1 FROM taken)
       ORDER BY id -- one lock order for every caller: overlapping batches wait, never deadlock
       RETURNING id, tenant, name, run_at, created_at
     ), se AS (
       ${streamEvents("j", sql`'pending'`, sql`0`)}
     ), sent AS (
       SELECT pg_notify(${CHANNEL.ready}, '') FROM j WHERE ${p.notify}::boolean AND j.run_at <= now() LIMIT 1
     )
     -- "sent" must be read by the output (a CTE nothing reads is never run), and the output
     -- always has a row: the aggregate over "taken".
     SELECT t.taken, r.id, r.run_at, r.created_at, (SELECT count(*) FROM sent)::int AS sent
     FROM (SELECT array_agg(id) AS taken FROM taken) t
     LEFT JOIN LATERAL (SELECT id, run_at, created_at FROM j) r ON true`,
  { prepare: true },
);

/** A freshly inserted pending job as a row: the input, the column defaults, and the times the server set. */
function insertedRow(input: NewJobRow, runAt: Date, createdAt: Date): JobRow {
  return {
    id: input.id,
    job_type: input.job_type,
    name: input.name,
    description: input.description,
    payload: input.payload as JobRow["payload"],
    dependencies: input.dependencies,
    max_retries: input.max_retries,
    retry_count: 0,
    attempts: 0,
    status: "pending",
    error_message: null,
    result: null,
    priority: input.priority,
    run_at: runAt,
    pending_dependencies: input.pending_dependencies,
    queue: input.queue,
    tenant: input.tenant,
    rate_limit_key: input.rate_limit_key,
    rate_limit_cost: input.rate_limit_cost,
    concurrency_key: input.concurrency_key,
    tags: input.tags,
    task_id: input.task_id,
    parent_id: input.parent_id,
    ready_at: null,
    delegation_key: input.delegation_key,
    detached: input.detached,
    schedule_name: input.schedule_name,
    scheduled_for: input.scheduled_for === null ? null : new Date(input.scheduled_for),
    timeout_seconds: input.timeout_seconds,
    locked_by: null,
    lease_token: null,
    lease_expires_at: null,
    started_at: null,
    completed_at: null,
    created_at: createdAt,
    updated_at: createdAt,
    duration_seconds: null,
    archived: false,
  };
}

const insertEdgesStatement = statement<{ edges: string }, never>(
  (p) => sql`INSERT INTO ${T.job_dependencies} (job_id, depends_on_id, on_failure)
     SELECT job_id, depends_on_id, on_failure FROM jsonb_to_recordset(${p.edges}::jsonb) AS x(job_id text, depends_on_id text, on_failure text)
     ON CONFLICT (job_id, depends_on_id) DO UPDATE SET on_failure = EXCLUDED.on_failure`,
);

/** Inserts dependency edges. */
export async function insertEdges(db: Sql, edges: readonly EdgeRow[]): Promise<void> {
  if (edges.length === 0) return;
  await insertEdgesStatement.all(db, { edges: JSON.stringify(edges) });
}

const insertEndedStatement = statement<{ rows: string }, JobRow>(
  (p) => sql`WITH input AS (
       SELECT * FROM jsonb_to_recordset(${p.rows}::jsonb) AS x(
         id text, job_type text, name text, description text, payload jsonb, dependencies jsonb,
         max_retries int, priority int, run_at timestamptz, timeout_seconds int, error_message text, status text,
         queue text, tenant text, rate_limit_key text, rate_limit_cost int, concurrency_key text, tags text[],
         task_id text, parent_id text, delegation_key text, detached boolean, schedule_name text, scheduled_for timestamptz)
     ), h AS (
       INSERT INTO ${T.job_history} (job_id, job_type, name, description, payload, dependencies, max_retries,
         retry_count, attempts, status, error_message, priority, run_at, queue, tenant, rate_limit_key,
         rate_limit_cost, concurrency_key, tags, task_id, parent_id, timeout_seconds, completed_at,
         created_at, updated_at, delegation_key, detached, schedule_name, scheduled_for)
       SELECT id, job_type, name, description, payload, dependencies, max_retries, 0, 0, status,
              error_message, priority, COALESCE(run_at, now()), queue, tenant, rate_limit_key,
              rate_limit_cost, concurrency_key, tags, task_id, parent_id, timeout_seconds, now(), now(), now(),
              delegation_key, COALESCE(detached, false), schedule_name, scheduled_for
       FROM input
       RETURNING *
     ), se AS (
       ${streamEvents("input", sql`e.status`, sql`0`)}
     )
     SELECT ${HISTORY_COLUMNS} FROM h`,
);

/**
 * Records jobs that end from the start (a dependency had already failed or
 * been cancelled) directly in history, each with its status and reason.
 */
export function insertEnded(db: Sql, rows: ReadonlyArray<NewJobRow & { error_message: string; status: "failed" | "cancelled" }>): Promise<JobRow[]> {
  return insertEndedStatement.all(db, { rows: JSON.stringify(rows) });
}

const notifyReadyStatement = statement<Record<string, never>, { sent: number }>(
  () => sql`SELECT 1 AS sent FROM (SELECT pg_notify(${CHANNEL.ready}, '')) AS n`,
);

/** Tells listening workers that jobs are ready (delivered when the transaction commits). */
export async function notifyReady(db: Sql): Promise<void> {
  await notifyReadyStatement.all(db, {});
}
