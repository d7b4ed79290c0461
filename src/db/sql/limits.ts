import type { Sql } from "../database";
import { claimOrder, filterValues, flowReady, pausedMs, ready, refilledTokens, shapeKey, shapeOf, workerFilter, type FilterShape, type WorkerFilter } from "./fragments";
import { leaseSet, leaseTokens, LIVE_COLUMNS, streamEvents, type JobRow, type LeaseParams } from "./rows";
import { sql, statement, T, variants } from "./template";

/**
 * Flow-control statements: rate limits (token buckets), concurrency caps,
 * tenant weights, and the flow-control claim. The claim runs as several
 * statements in one transaction (src/limits/claim.ts): the limit rows are
 * locked first, so every later statement of the transaction starts with a
 * snapshot that sees every claim committed before the lock was granted.
 */

export type { WorkerFilter } from "./fragments";

/** A rate-limit bucket after refilling, as the claim sees it. */
export interface BucketRow {
  key: string;
  rate_per_second: number | null;
  burst: number;
  tokens: number;
  /** Milliseconds until the pause ends (0 when not paused). */
  paused_ms: number;
}

/** A concurrency key's cap and how many of its jobs run now. */
export interface ConcurrencyRow {
  key: string;
  max_running: number;
  running: number;
}

/** A claim candidate, locked by the claiming transaction. */
export interface CandidateRow {
  id: string;
  grp: string;
  weight: number;
  rate_limit_key: string | null;
  rate_limit_cost: number;
  concurrency_key: string | null;
}

const upsertRateLimitStatement = statement<{ key: string; rate: number; burst: number }, never>(
  (p) => sql`INSERT INTO ${T.rate_limits} AS r (key, rate_per_second, burst, tokens, refilled_at, updated_at)
     VALUES (${p.key}, ${p.rate}, ${p.burst}, ${p.burst}, clock_timestamp(), clock_timestamp())
     ON CONFLICT (key) DO UPDATE SET rate_per_second = ${p.rate}, burst = ${p.burst},
       tokens = LEAST(r.tokens, ${p.burst}), updated_at = clock_timestamp()`,
);

/** Creates or replaces a key's bucket (full at the start). */
export async function upsertRateLimit(db: Sql, key: string, ratePerSecond: number, burst: number): Promise<void> {
  await upsertRateLimitStatement.all(db, { key, rate: ratePerSecond, burst });
}

const deleteRateLimitStatement = statement<{ key: string }, { key: string }>((p) => sql`DELETE FROM ${T.rate_limits} WHERE key = ${p.key} RETURNING key`);

/** Removes a key's rate limit; returns whether it existed. */
export async function deleteRateLimit(db: Sql, key: string): Promise<boolean> {
  return (await deleteRateLimitStatement.all(db, { key })).length > 0;
}

/** A stored rate limit with its current (refilled) tokens. */
export interface RateLimitRow {
  key: string;
  rate_per_second: number | null;
  burst: number;
  tokens: number;
  paused_until: Date | null;
}

const listRateLimitsStatement = statement<Record<string, never>, RateLimitRow>(
  () => sql`SELECT r.key, r.rate_per_second, r.burst, (${refilledTokens("r")})::float8 AS tokens,
       CASE WHEN r.paused_until > clock_timestamp() THEN r.paused_until END AS paused_until
     FROM ${T.rate_limits} r ORDER BY r.key`,
);

/** Every rate limit, with its current (refilled) tokens. */
export function listRateLimits(db: Sql): Promise<RateLimitRow[]> {
  return listRateLimitsStatement.all(db, {});
}

const pauseKeyStatement = statement<{ key: string; seconds: number }, never>(
  (p) => sql`INSERT INTO ${T.rate_limits} AS r (key, rate_per_second, paused_until) VALUES (${p.key}, NULL, clock_timestamp() + make_interval(secs => ${p.seconds}))
     ON CONFLICT (key) DO UPDATE SET
       paused_until = GREATEST(COALESCE(r.paused_until, '-infinity'), clock_timestamp() + make_interval(secs => ${p.seconds})),
       updated_at = clock_timestamp()`,
);

/** Pauses a key (a provider pushed back), creating its row if it has no limit. */
export async function pauseRateLimitKey(db: Sql, key: string, seconds: number): Promise<void> {
  await pauseKeyStatement.all(db, { key, seconds });
}

const deleteConcurrencyStatement = statement<{ key: string }, never>((p) => sql`DELETE FROM ${T.concurrency_limits} WHERE key = ${p.key}`);
const upsertConcurrencyStatement = statement<{ key: string; max: number }, never>(
  (p) => sql`INSERT INTO ${T.concurrency_limits} (key, max_running) VALUES (${p.key}, ${p.max})
     ON CONFLICT (key) DO UPDATE SET max_running = ${p.max}, updated_at = clock_timestamp()`,
);

/** Sets (or, with null, removes) a concurrency cap. */
export async function upsertConcurrencyLimit(db: Sql, key: string, maxRunning: number | null): Promise<void> {
  if (maxRunning === null) await deleteConcurrencyStatement.all(db, { key });
  else await upsertConcurrencyStatement.all(db, { key, max: maxRunning });
}

const deleteWeightStatement = statement<{ tenant: string }, never>((p) => sql`DELETE FROM ${T.tenant_weights} WHERE tenant = ${p.tenant}`);
const upsertWeightStatement = statement<{ tenant: string; weight: number }, never>(
  (p) => sql`INSERT INTO ${T.tenant_weights} (tenant, weight) VALUES (${p.tenant}, ${p.weight})
     ON CONFLICT (tenant) DO UPDATE SET weight = ${p.weight}, updated_at = clock_timestamp()`,
);

/** Sets a tenant's weight (1 removes the row: it is the default). */
export async function upsertTenantWeight(db: Sql, tenant: string, weight: number): Promise<void> {
  if (weight === 1) await deleteWeightStatement.all(db, { tenant });
  else await upsertWeightStatement.all(db, { tenant, weight });
}

const flowWaitingStatement = variants(shapeKey, (shape: FilterShape) =>
  statement<WorkerFilter, { waiting: boolean }>(
    (p) => sql`SELECT EXISTS (SELECT 1 FROM ${T.jobs} w WHERE ${flowReady("w")}${workerFilter(p, "w", shape)}) AS waiting`,
    { prepare: true }, // asked in every flow-control claim: planned once per connection
  ),
);

/**
 * Whether ready jobs that need the flow-control claim (a tenant, a rate-limit
 * key or a concurrency key) wait for this worker. Reads jobs_ready_flow_idx,
 * which is empty when those features are unused.
 */
export async function flowJobsWaiting(db: Sql, filter: WorkerFilter): Promise<boolean> {
  return (await flowWaitingStatement(shapeOf(filter)).one(db, filterValues(filter)))?.waiting === true;
}

const lockBucketsStatement = statement<Record<string, never>, BucketRow>(
  () => sql`WITH locked AS (SELECT key FROM ${T.rate_limits} ORDER BY key FOR UPDATE)
     UPDATE ${T.rate_limits} r SET tokens = ${refilledTokens("r")}, refilled_at = GREATEST(r.refilled_at, clock_timestamp())
     FROM locked l WHERE r.key = l.key
     RETURNING r.key, r.rate_per_second, r.burst, r.tokens, ${pausedMs("r")} AS paused_ms`,
);

/** Step 1 of the flow claim: locks every bucket in key order and refills it. */
export function lockAndRefillBuckets(db: Sql): Promise<BucketRow[]> {
  return lockBucketsStatement.all(db, {});
}

const lockCapsStatement = statement<Record<string, never>, { key: string; max_running: number }>(
  () => sql`SELECT key, max_running FROM ${T.concurrency_limits} ORDER BY key FOR UPDATE`,
);
const runningByKeyStatement = statement<{ keys: string[] }, { key: string; n: number }>(
  (p) => sql`SELECT concurrency_key AS key, count(*)::int AS n FROM ${T.jobs}
     WHERE status = 'running' AND concurrency_key = ANY(${p.keys}::text[]) GROUP BY concurrency_key`,
);

/** Step 2: locks every concurrency cap in key order, then counts running jobs per key (a fresh snapshot). */
export async function lockConcurrency(db: Sql): Promise<ConcurrencyRow[]> {
  const caps = await lockCapsStatement.all(db, {});
  if (caps.length === 0) return [];
  const running = await runningByKeyStatement.all(db, { keys: caps.map((c) => c.key) });
  const counts = new Map(running.map((r) => [r.key, r.n]));
  return caps.map((c) => ({ ...c, running: counts.get(c.key) ?? 0 }));
}

type CandidateParams = WorkerFilter & { perGroup: number; maxGroups: number; blockedRateKeys: string[]; blockedConcurrencyKeys: string[] };

const candidatesStatement = variants(shapeKey, (shape: FilterShape) =>
  statement<CandidateParams, CandidateRow>(
    (p) => sql`WITH RECURSIVE groups(grp) AS (
       (SELECT COALESCE(g.tenant, '') FROM ${T.jobs} g WHERE ${ready("g")} ORDER BY COALESCE(g.tenant, '') LIMIT 1)
       UNION ALL
       SELECT (SELECT COALESCE(j.tenant, '') FROM ${T.jobs} j
               WHERE ${ready("j")} AND COALESCE(j.tenant, '') > g.grp
               ORDER BY COALESCE(j.tenant, '') LIMIT 1)
       FROM groups g WHERE g.grp IS NOT NULL
     ), some_groups AS (
       SELECT grp FROM groups WHERE grp IS NOT NULL LIMIT ${p.maxGroups}
     )
     SELECT c.id, g.grp, COALESCE(w.weight, 1) AS weight, c.rate_limit_key, c.rate_limit_cost, c.concurrency_key
     FROM some_groups g
     LEFT JOIN ${T.tenant_weights} w ON w.tenant = g.grp
     CROSS JOIN LATERAL (
       SELECT j.id, j.rate_limit_key, j.rate_limit_cost, j.concurrency_key FROM ${T.jobs} j
       WHERE ${ready("j")} AND COALESCE(j.tenant, '') = g.grp
         AND j.run_at <= now()${workerFilter(p, "j", shape)}
         AND (j.rate_limit_key IS NULL OR j.rate_limit_key <> ALL(${p.blockedRateKeys}::text[]))
         AND (j.concurrency_key IS NULL OR j.concurrency_key <> ALL(${p.blockedConcurrencyKeys}::text[]))
       ORDER BY ${claimOrder("j")}
       LIMIT ${p.perGroup}
       FOR UPDATE OF j SKIP LOCKED
     ) c`,
  ),
);

/**
 * Step 3: the head of every tenant's ready queue. A skip scan over
 * jobs_ready_idx finds the distinct tenants (jobs without one form the group
 * ''), then each group's first `perGroup` runnable jobs are locked with SKIP
 * LOCKED, leaving out keys that are blocked (empty bucket, paused, cap full).
 */
export function lockCandidates(
  db: Sql,
  args: { perGroup: number; maxGroups: number; filter: WorkerFilter; blockedRateKeys: string[]; blockedConcurrencyKeys: string[] },
): Promise<CandidateRow[]> {
  const { filter, ...rest } = args;
  return candidatesStatement(shapeOf(filter)).all(db, { ...rest, ...filterValues(filter) });
}

const leaseChosenStatement = statement<LeaseParams & { ids: readonly string[]; tokens: string[] }, JobRow>(
  (p) => sql`WITH chosen AS (
       SELECT id, n FROM unnest(${p.ids}::text[]) WITH ORDINALITY AS c(id, n)
     ), j AS (
       UPDATE ${T.jobs} t SET ${leaseSet(p, "t", sql`(${p.tokens}::uuid[])[c.n]`, sql`clock_timestamp()`)}
       FROM chosen c WHERE t.id = c.id AND t.status = 'pending'
       RETURNING t.*
     ), se AS (
       ${streamEvents("j", sql`'running'`, sql`e.attempts`)}
     )
     SELECT ${LIVE_COLUMNS} FROM j`,
);

/** Step 4: leases the chosen candidates (locked by this transaction in step 3). */
export function leaseChosen(db: Sql, ids: readonly string[], workerId: string, leaseSeconds: number): Promise<JobRow[]> {
  return leaseChosenStatement.all(db, { ids, workerId, leaseSeconds, tokens: leaseTokens(ids.length) });
}

const chargeStatement = statement<{ keys: string[]; costs: number[] }, never>(
  (p) => sql`UPDATE ${T.rate_limits} r SET tokens = r.tokens - c.cost, updated_at = clock_timestamp()
     FROM (SELECT unnest(${p.keys}::text[]) AS key, unnest(${p.costs}::float8[]) AS cost) c WHERE r.key = c.key`,
);

/** Step 5: charges the buckets for the jobs leased. */
export async function chargeBuckets(db: Sql, charges: ReadonlyMap<string, number>): Promise<void> {
  if (charges.size === 0) return;
  await chargeStatement.all(db, { keys: [...charges.keys()], costs: [...charges.values()] });
}

const deferStatement = statement<{ id: string; leaseToken: string; seconds: number; message: string }, { id: string }>(
  (p) => sql`WITH before AS (
       SELECT id, locked_by, attempts, started_at FROM ${T.jobs} WHERE id = ${p.id} AND lease_token = ${p.leaseToken}::uuid AND status = 'running'
     ), u AS (
       UPDATE ${T.jobs} j SET status = 'pending', locked_by = NULL, lease_token = NULL, lease_expires_at = NULL,
         error_message = ${p.message},
         run_at = clock_timestamp() + make_interval(secs => ${p.seconds}), updated_at = clock_timestamp()
       FROM before b
       -- The lease is checked again here: a row lock waited for re-checks only this WHERE.
       WHERE j.id = b.id AND j.lease_token = ${p.leaseToken}::uuid AND j.status = 'running'
       RETURNING j.id, j.tenant, j.name, j.attempts
     ), se AS (
       ${streamEvents("u", sql`'pending'`, sql`e.attempts`)}
     ), ev AS (
       INSERT INTO ${T.job_events} (job_id, event, worker_id, attempt, detail)
       SELECT b.id, 'rate_limited', b.locked_by, b.attempts, jsonb_build_object('retryAfterSeconds', ${p.seconds}::float8, 'startedAt', b.started_at)
       FROM before b JOIN u ON u.id = b.id
     )
     SELECT id FROM u`,
);

/**
 * Puts a job back to pending after its executor reported that the provider
 * pushed back: no retry is used. Only the lease holder can do this. Returns
 * whether the lease matched.
 */
export async function deferRateLimited(db: Sql, id: string, leaseToken: string, seconds: number, message: string): Promise<boolean> {
  return (await deferStatement.all(db, { id, leaseToken, seconds, message })).length > 0;
}

/** Everything `explain` needs to know about a live job, in one query. */
export interface ExplainRow {
  id: string;
  name: string;
  status: string;
  pending_dependencies: number;
  run_in_ms: number;
  queue: string;
  tags: string[];
  tenant: string | null;
  rate_limit_key: string | null;
  rate_limit_cost: number;
  concurrency_key: string | null;
  locked_by: string | null;
  started_at: Date | null;
  /** Unfinished dependencies, and (edge `wait`) the delegated children a parked parent waits for. */
  waiting_on: Array<{ id: string; name: string; status: string; edge: string }> | null;
  /** A parked parent's deadline for its children. */
  wait_until: Date | null;
  /** The job sleeps (`ctx.sleep`) until its run time. */
  sleeping: boolean;
  rate_per_second: number | null;
  burst: number | null;
  tokens: number | null;
  paused_ms: number | null;
  max_running: number | null;
  running_with_key: number;
  live_workers: number;
  /** Live workers claiming (not quiet or draining) that serve the job's queue, tags and tenant. */
  serving_workers: number;
  /** The same without the tenant: more than serving_workers when only workers of other tenants could run it. */
  serving_any_tenant: number;
  /** The job's queue is paused. */
  queue_paused: boolean;
  ahead: number;
}

const explainStatement = statement<{ id: string; liveWithin: number }, ExplainRow>(
  (p) => sql`SELECT j.id, j.name, j.status, j.pending_dependencies, (EXTRACT(EPOCH FROM j.run_at - now()) * 1000)::float8 AS run_in_ms,
       j.queue, j.tags, j.tenant, j.rate_limit_key, j.rate_limit_cost, j.concurrency_key, j.locked_by, j.started_at,
       (SELECT json_agg(json_build_object('id', d.id, 'name', d.name, 'status', d.status, 'edge', e.on_failure) ORDER BY d.id)
          FROM ${T.job_dependencies} e JOIN ${T.jobs} d ON d.id = e.depends_on_id WHERE e.job_id = j.id) AS waiting_on,
       j.wait_until,
       EXISTS (SELECT 1 FROM ${T.job_steps} s WHERE s.job_id = j.id AND s.wake_at = j.run_at AND s.wake_at > now()) AS sleeping,
       rl.rate_per_second, rl.burst,
       CASE WHEN rl.key IS NULL THEN NULL ELSE ${refilledTokens("rl")} END::float8 AS tokens,
       ${pausedMs("rl")} AS paused_ms,
       cl.max_running,
       (SELECT count(*) FROM ${T.jobs} r WHERE r.status = 'running' AND r.concurrency_key = j.concurrency_key)::int AS running_with_key,
       (SELECT count(*) FROM ${T.workers} w WHERE w.status <> 'stopping'
          AND w.last_heartbeat_at > now() - make_interval(secs => ${p.liveWithin}))::int AS live_workers,
       (SELECT count(*) FROM ${T.workers} w WHERE w.status = 'running' AND w.last_heartbeat_at > now() - make_interval(secs => ${p.liveWithin})
          AND (w.queues IS NULL OR j.queue = ANY(w.queues)) AND j.tags <@ w.tags
          AND (w.tenants IS NULL OR j.tenant = ANY(w.tenants)))::int AS serving_workers,
       (SELECT count(*) FROM ${T.workers} w WHERE w.status = 'running' AND w.last_heartbeat_at > now() - make_interval(secs => ${p.liveWithin})
          AND (w.queues IS NULL OR j.queue = ANY(w.queues)) AND j.tags <@ w.tags)::int AS serving_any_tenant,
       EXISTS (SELECT 1 FROM ${T.paused_queues} pq WHERE pq.name = j.queue) AS queue_paused,
       (SELECT count(*) FROM ${T.jobs} q WHERE ${ready("q")} AND q.run_at <= now()
          AND COALESCE(q.tenant, '') = COALESCE(j.tenant, '')
          AND (q.priority > j.priority OR (q.priority = j.priority AND (q.run_at, q.id) < (j.run_at, j.id))))::int AS ahead
     FROM ${T.jobs} j
     LEFT JOIN ${T.rate_limits} rl ON rl.key = j.rate_limit_key
     LEFT JOIN ${T.concurrency_limits} cl ON cl.key = j.concurrency_key
     WHERE j.id = ${p.id}`,
);

/** Reads why a live job waits (null if the job is not live). */
export function explainFacts(db: Sql, id: string, liveWithinSeconds: number): Promise<ExplainRow | undefined> {
  return explainStatement.one(db, { id, liveWithin: liveWithinSeconds });
}
