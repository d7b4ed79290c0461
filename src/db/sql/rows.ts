import { randomUUID } from "node:crypto";
import { columnList, empty, ident, join, sql, T, type Fragment, type Params } from "./template";
import type { DependencySpec, Job, JobStatus, JsonObject, JsonValue } from "../../core/types";

/** A job row as the statements in this folder return it (live and archived alike). */
export interface JobRow {
  id: string;
  job_type: string;
  name: string;
  description: string | null;
  payload: JsonObject;
  dependencies: DependencySpec[];
  max_retries: number;
  retry_count: number;
  attempts: number;
  status: JobStatus;
  error_message: string | null;
  result: JsonValue | null;
  priority: number;
  run_at: Date;
  pending_dependencies: number;
  queue: string;
  tenant: string | null;
  rate_limit_key: string | null;
  rate_limit_cost: number;
  concurrency_key: string | null;
  tags: string[];
  task_id: string | null;
  parent_id: string | null;
  ready_at: Date | null;
  delegation_key: string | null;
  detached: boolean;
  schedule_name: string | null;
  scheduled_for: Date | null;
  timeout_seconds: number | null;
  locked_by: string | null;
  lease_token: string | null;
  lease_expires_at: Date | null;
  started_at: Date | null;
  completed_at: Date | null;
  created_at: Date;
  updated_at: Date;
  duration_seconds: number | null;
  archived: boolean;
}

/**
 * Fresh lease tokens for a claim of up to `n` jobs, one per job, made here
 * rather than by the statement (Node's randomUUID() is much cheaper than
 * PostgreSQL's gen_random_uuid() per row: docs/BENCHMARKS.md).
 */
export function leaseTokens(n: number): string[] {
  const tokens = new Array<string>(n);
  for (let i = 0; i < n; i++) tokens[i] = randomUUID();
  return tokens;
}

/** The columns every job row has, live or archived, in {@link JobRow}'s order. */
const COMMON = [
  "job_type", "name", "description", "payload", "dependencies", "max_retries", "retry_count", "attempts", "status",
  "error_message", "result", "priority", "run_at",
] as const;
const COMMON_TAIL = [
  "queue", "tenant", "rate_limit_key", "rate_limit_cost", "concurrency_key", "tags", "task_id", "parent_id", "ready_at",
  "delegation_key", "detached", "schedule_name", "scheduled_for", "timeout_seconds", "locked_by",
] as const;

/** Columns of a live job (alias `j`), in the shape of {@link JobRow}. */
export const LIVE_COLUMNS = sql`j.id, ${columnList("j", COMMON)}, j.pending_dependencies, ${columnList("j", COMMON_TAIL)},
  j.lease_token, j.lease_expires_at, j.started_at, j.completed_at, j.created_at, j.updated_at,
  NULL::float8 AS duration_seconds, false AS archived`;

/** Columns of an archived job (alias `h`), in the shape of {@link JobRow}. */
export const HISTORY_COLUMNS = sql`h.job_id AS id, ${columnList("h", COMMON)}, 0 AS pending_dependencies, ${columnList("h", COMMON_TAIL)},
  NULL::uuid AS lease_token, NULL::timestamptz AS lease_expires_at, h.started_at, h.completed_at, h.created_at, h.updated_at,
  h.duration_seconds, true AS archived`;

/** What a lease needs: who takes it and for how long. */
export interface LeaseParams {
  workerId: string;
  /** Lease length in seconds; the worker renews it with heartbeats. */
  leaseSeconds: number;
}

/**
 * The columns a job gets when a worker takes it, as (column, value) pairs:
 * `token` is the lease token's SQL, `at` the time it starts (now() in a
 * one-statement claim, clock_timestamp() in a transaction of several).
 */
function leaseValues(p: Params<LeaseParams>, alias: string, token: Fragment, at: Fragment): Array<[string, Fragment]> {
  return [
    ["status", sql`'running'`],
    ["locked_by", sql`${p.workerId}`],
    ["lease_token", token],
    ["lease_expires_at", sql`${at} + make_interval(secs => ${p.leaseSeconds})`],
    ["started_at", at],
    ["attempts", sql`${ident(alias)}.attempts + 1`],
  ];
}

/** The `SET` list that leases a job of table alias `alias` to a worker (the one rule every claim path shares). */
export function leaseSet(p: Params<LeaseParams>, alias: string, token: Fragment, at: Fragment = sql`now()`): Fragment {
  return join([...leaseValues(p, alias, token, at).map(([column, value]) => sql`${ident(column)} = ${value}`), sql`updated_at = ${at}`], ", ");
}

/** {@link leaseSet} for the rows where `condition` holds, the others keeping their values (`updated_at` is the caller's). */
export function leaseSetWhere(condition: Fragment, p: Params<LeaseParams>, alias: string, token: Fragment, at: Fragment): Fragment {
  return join(
    leaseValues(p, alias, token, at).map(([column, value]) => sql`${ident(column)} = CASE WHEN ${condition} THEN ${value} ELSE ${ident(alias)}.${ident(column)} END`),
    ", ",
  );
}

/**
 * A start time moved past the wait of a job claimed ahead of a free slot
 * (`prefetch`), so that it is when the executor started. `heldMs` is in
 * milliseconds.
 */
export function startAfterHold(startedAt: Fragment, heldMs: Fragment): Fragment {
  return sql`(${startedAt} + make_interval(secs => ${heldMs} / 1000.0))`;
}

/** What an archived row records that the live row did not say. */
export interface ArchiveValues {
  status: Fragment;
  error: Fragment;
  result: Fragment;
  /** @defaultValue the live row's `started_at` */
  startedAt?: Fragment;
}

/**
 * The INSERT ... SELECT that appends a stream event (docs/ARCHITECTURE.md,
 * "Live streams") for each row of `source` (a CTE with `id`, `tenant` and
 * `name`, read as `e`): the new `status` and `attempt`, SQL over `e`.
 */
export function streamEvents(source: string, status: Fragment, attempt: Fragment, where: Fragment = empty): Fragment {
  return sql`INSERT INTO ${T.stream_events} (job_id, tenant, name, status, attempt)
     SELECT e.id, e.tenant, e.name, ${status}, ${attempt} FROM ${ident(source)} e${where}`;
}

/**
 * The INSERT ... SELECT that archives the rows of `source` (a CTE holding
 * deleted `jobs` rows, read as `s`) into job_history.
 */
export function archiveInsert(source: string, values: ArchiveValues): Fragment {
  const startedAt = values.startedAt ?? sql`s.started_at`;
  return sql`INSERT INTO ${T.job_history} (job_id, job_type, name, description, payload, dependencies, max_retries,
      retry_count, attempts, status, error_message, result, priority, run_at, queue, tenant, rate_limit_key,
      rate_limit_cost, concurrency_key, tags, timeout_seconds, parent_id, task_id, locked_by, duration_seconds,
      started_at, completed_at, created_at, updated_at, ready_at, delegation_key, detached, schedule_name, scheduled_for)
    SELECT s.id, s.job_type, s.name, s.description, s.payload, s.dependencies, s.max_retries,
      s.retry_count, s.attempts, ${values.status}, ${values.error}, ${values.result}, s.priority, s.run_at, s.queue, s.tenant,
      s.rate_limit_key, s.rate_limit_cost, s.concurrency_key, s.tags, s.timeout_seconds, s.parent_id, s.task_id,
      s.locked_by, EXTRACT(EPOCH FROM (clock_timestamp() - ${startedAt}))::float8, ${startedAt},
      clock_timestamp(), s.created_at, clock_timestamp(), s.ready_at, s.delegation_key, s.detached, s.schedule_name, s.scheduled_for
    FROM ${ident(source)} s`;
}

/** Converts a row to the public {@link Job} shape. */
export function toJob(row: JobRow): Job {
  return {
    id: row.id,
    jobType: row.job_type,
    name: row.name,
    description: row.description,
    payload: row.payload,
    dependencies: row.dependencies,
    maxRetries: row.max_retries,
    retryCount: row.retry_count,
    attempts: row.attempts,
    status: row.status,
    errorMessage: row.error_message,
    result: row.result,
    priority: row.priority,
    runAt: row.run_at,
    pendingDependencies: row.pending_dependencies,
    queue: row.queue,
    tenant: row.tenant,
    rateLimitKey: row.rate_limit_key,
    rateLimitCost: row.rate_limit_cost,
    concurrencyKey: row.concurrency_key,
    tags: row.tags,
    taskId: row.task_id,
    parentId: row.parent_id,
    delegationKey: row.delegation_key,
    detached: row.detached,
    scheduleName: row.schedule_name,
    scheduledFor: row.scheduled_for,
    readyAt: row.ready_at,
    timeoutSeconds: row.timeout_seconds,
    lockedBy: row.locked_by,
    leaseExpiresAt: row.lease_expires_at,
    startedAt: row.started_at,
    completedAt: row.completed_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    durationSeconds: row.duration_seconds,
    archived: row.archived,
  };
}
