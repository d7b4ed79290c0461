import type { Sql } from "../database";
import { leaseTokens, LIVE_COLUMNS, type JobRow } from "./rows";

/**
 * Flow-control statements: rate limits (token buckets), concurrency caps,
 * tenant weights, and the flow-control claim. The claim runs as several
 * statements in one transaction (see FlowClaimer in src/limits): the limit
 * rows are locked first, so every later statement of the transaction starts
 * with a snapshot that sees every claim committed before the lock was granted.
 */

/** The filter a worker applies to what it runs. */
export interface WorkerFilter {
  /** Queues served; null for every queue. */
  queues: string[] | null;
  /** The worker's tags: a job runs here only if its tags are a subset. */
  tags: string[];
}

/**
 * The SQL condition for a worker's filter on table alias `alias`, with its
 * parameters numbered from `firstParam`. A worker without tags asks for
 * `tags = '{}'` rather than `tags <@ '{}'`: PostgreSQL estimates equality from
 * its statistics but guesses containment, and a bad guess turns the claim's
 * ordered index scan into a sort of the whole backlog.
 */
export function filterCondition(filter: WorkerFilter, alias: string, firstParam: number): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  let sql = filter.tags.length === 0 ? ` AND ${alias}.tags = '{}'` : ` AND ${alias}.tags <@ $${firstParam + params.push(filter.tags) - 1}::text[]`;
  if (filter.queues !== null) sql += ` AND ${alias}.queue = ANY($${firstParam + params.push(filter.queues) - 1}::text[])`;
  return { sql, params };
}

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

/** Creates or replaces a key's bucket (full at the start). */
export async function upsertRateLimit(sql: Sql, key: string, ratePerSecond: number, burst: number): Promise<void> {
  await sql.query(
    `INSERT INTO rate_limits (key, rate_per_second, burst, tokens, refilled_at, updated_at)
     VALUES ($1, $2, $3, $3, clock_timestamp(), clock_timestamp())
     ON CONFLICT (key) DO UPDATE SET rate_per_second = $2, burst = $3,
       tokens = LEAST(rate_limits.tokens, $3), updated_at = clock_timestamp()`,
    [key, ratePerSecond, burst],
  );
}

/** Removes a key's rate limit; returns whether it existed. */
export async function deleteRateLimit(sql: Sql, key: string): Promise<boolean> {
  return (await sql.query(`DELETE FROM rate_limits WHERE key = $1 RETURNING key`, [key])).length > 0;
}

/** Every rate limit, with its current (refilled) tokens. */
export function listRateLimits(sql: Sql): Promise<Array<{ key: string; rate_per_second: number | null; burst: number; tokens: number; paused_until: Date | null }>> {
  return sql.query(
    `SELECT key, rate_per_second, burst,
       CASE WHEN rate_per_second IS NULL THEN tokens
            ELSE LEAST(burst, tokens + rate_per_second * GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - refilled_at)))
       END::float8 AS tokens,
       CASE WHEN paused_until > clock_timestamp() THEN paused_until END AS paused_until
     FROM rate_limits ORDER BY key`,
  );
}

/** Pauses a key (a provider pushed back), creating its row if it has no limit. */
export async function pauseRateLimitKey(sql: Sql, key: string, seconds: number): Promise<void> {
  await sql.query(
    `INSERT INTO rate_limits (key, rate_per_second, paused_until) VALUES ($1, NULL, clock_timestamp() + make_interval(secs => $2))
     ON CONFLICT (key) DO UPDATE SET
       paused_until = GREATEST(COALESCE(rate_limits.paused_until, '-infinity'), clock_timestamp() + make_interval(secs => $2)),
       updated_at = clock_timestamp()`,
    [key, seconds],
  );
}

/** Sets (or, with null, removes) a concurrency cap. */
export async function upsertConcurrencyLimit(sql: Sql, key: string, maxRunning: number | null): Promise<void> {
  if (maxRunning === null) {
    await sql.query(`DELETE FROM concurrency_limits WHERE key = $1`, [key]);
    return;
  }
  await sql.query(
    `INSERT INTO concurrency_limits (key, max_running) VALUES ($1, $2)
     ON CONFLICT (key) DO UPDATE SET max_running = $2, updated_at = clock_timestamp()`,
    [key, maxRunning],
  );
}

/** Sets a tenant's weight (1 removes the row: it is the default). */
export async function upsertTenantWeight(sql: Sql, tenant: string, weight: number): Promise<void> {
  if (weight === 1) {
    await sql.query(`DELETE FROM tenant_weights WHERE tenant = $1`, [tenant]);
    return;
  }
  await sql.query(
    `INSERT INTO tenant_weights (tenant, weight) VALUES ($1, $2)
     ON CONFLICT (tenant) DO UPDATE SET weight = $2, updated_at = clock_timestamp()`,
    [tenant, weight],
  );
}

/**
 * Whether ready jobs that need the flow-control claim (a tenant, a rate-limit
 * key or a concurrency key) wait for this worker. Reads jobs_ready_flow_idx,
 * which is empty when those features are unused.
 */
export async function flowJobsWaiting(sql: Sql, filter: WorkerFilter): Promise<boolean> {
  const where = filterCondition(filter, "j", 1);
  const rows = await sql.query<{ waiting: boolean }>(
    `SELECT EXISTS (
       SELECT 1 FROM jobs j
       WHERE j.status = 'pending' AND j.pending_dependencies = 0
         AND (j.tenant IS NOT NULL OR j.rate_limit_key IS NOT NULL OR j.concurrency_key IS NOT NULL)
         AND j.run_at <= now()${where.sql}
     ) AS waiting`,
    where.params,
    { prepare: true }, // asked in every flow-control claim: planned once per connection
  );
  return rows[0]?.waiting === true;
}

/** Step 1 of the flow claim: locks every bucket in key order and refills it. */
export function lockAndRefillBuckets(sql: Sql): Promise<BucketRow[]> {
  return sql.query<BucketRow>(
    `WITH locked AS (SELECT key FROM rate_limits ORDER BY key FOR UPDATE)
     UPDATE rate_limits r SET
       tokens = CASE WHEN r.rate_per_second IS NULL THEN r.tokens
                     ELSE LEAST(r.burst, r.tokens + r.rate_per_second * GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - r.refilled_at))) END,
       refilled_at = GREATEST(r.refilled_at, clock_timestamp())
     FROM locked l WHERE r.key = l.key
     RETURNING r.key, r.rate_per_second, r.burst, r.tokens,
       GREATEST(0, COALESCE(EXTRACT(EPOCH FROM r.paused_until - clock_timestamp()) * 1000, 0))::float8 AS paused_ms`,
  );
}

/** Step 2: locks every concurrency cap in key order, then counts running jobs per key (a fresh snapshot). */
export async function lockConcurrency(sql: Sql): Promise<ConcurrencyRow[]> {
  const caps = await sql.query<{ key: string; max_running: number }>(`SELECT key, max_running FROM concurrency_limits ORDER BY key FOR UPDATE`);
  if (caps.length === 0) return [];
  const running = await sql.query<{ key: string; n: number }>(
    `SELECT concurrency_key AS key, count(*)::int AS n FROM jobs
     WHERE status = 'running' AND concurrency_key = ANY($1::text[]) GROUP BY concurrency_key`,
    [caps.map((c) => c.key)],
  );
  const counts = new Map(running.map((r) => [r.key, r.n]));
  return caps.map((c) => ({ ...c, running: counts.get(c.key) ?? 0 }));
}

/**
 * Step 3: the head of every tenant's ready queue. A skip scan over
 * jobs_ready_idx finds the distinct tenants (jobs without one form the group
 * ''), then each group's first `perGroup` runnable jobs are locked with SKIP
 * LOCKED, leaving out keys that are blocked (empty bucket, paused, cap full).
 */
export function lockCandidates(
  sql: Sql,
  args: { perGroup: number; maxGroups: number; filter: WorkerFilter; blockedRateKeys: string[]; blockedConcurrencyKeys: string[] },
): Promise<CandidateRow[]> {
  const where = filterCondition(args.filter, "j", 5);
  return sql.query<CandidateRow>(
    `WITH RECURSIVE groups(grp) AS (
       (SELECT COALESCE(tenant, '') FROM jobs WHERE status = 'pending' AND pending_dependencies = 0
        ORDER BY COALESCE(tenant, '') LIMIT 1)
       UNION ALL
       SELECT (SELECT COALESCE(j.tenant, '') FROM jobs j
               WHERE j.status = 'pending' AND j.pending_dependencies = 0 AND COALESCE(j.tenant, '') > g.grp
               ORDER BY COALESCE(j.tenant, '') LIMIT 1)
       FROM groups g WHERE g.grp IS NOT NULL
     ), some_groups AS (
       SELECT grp FROM groups WHERE grp IS NOT NULL LIMIT $2
     )
     SELECT c.id, g.grp, COALESCE(w.weight, 1) AS weight, c.rate_limit_key, c.rate_limit_cost, c.concurrency_key
     FROM some_groups g
     LEFT JOIN tenant_weights w ON w.tenant = g.grp
     CROSS JOIN LATERAL (
       SELECT j.id, j.rate_limit_key, j.rate_limit_cost, j.concurrency_key FROM jobs j
       WHERE j.status = 'pending' AND j.pending_dependencies = 0 AND COALESCE(j.tenant, '') = g.grp
         AND j.run_at <= now()${where.sql}
         AND (j.rate_limit_key IS NULL OR j.rate_limit_key <> ALL($3::text[]))
         AND (j.concurrency_key IS NULL OR j.concurrency_key <> ALL($4::text[]))
       ORDER BY j.priority DESC, j.run_at, j.id
       LIMIT $1
       FOR UPDATE OF j SKIP LOCKED
     ) c`,
    [args.perGroup, args.maxGroups, args.blockedRateKeys, args.blockedConcurrencyKeys, ...where.params],
  );
}

/** Step 4: leases the chosen candidates (locked by this transaction in step 3). */
export function leaseChosen(sql: Sql, ids: readonly string[], workerId: string, leaseSeconds: number): Promise<JobRow[]> {
  return sql.query<JobRow>(
    `WITH chosen AS (
       SELECT id, n FROM unnest($1::text[]) WITH ORDINALITY AS c(id, n)
     ), j AS (
       UPDATE jobs SET status = 'running', locked_by = $2, lease_token = ($4::uuid[])[c.n],
         lease_expires_at = clock_timestamp() + make_interval(secs => $3), started_at = clock_timestamp(),
         attempts = attempts + 1, updated_at = clock_timestamp()
       FROM chosen c WHERE jobs.id = c.id AND jobs.status = 'pending'
       RETURNING jobs.*
     )
     SELECT ${LIVE_COLUMNS} FROM j`,
    [ids, workerId, leaseSeconds, leaseTokens(ids.length)],
  );
}

/** Step 5: charges the buckets for the jobs leased. */
export async function chargeBuckets(sql: Sql, charges: ReadonlyMap<string, number>): Promise<void> {
  if (charges.size === 0) return;
  await sql.query(
    `UPDATE rate_limits r SET tokens = r.tokens - c.cost, updated_at = clock_timestamp()
     FROM (SELECT unnest($1::text[]) AS key, unnest($2::float8[]) AS cost) c WHERE r.key = c.key`,
    [[...charges.keys()], [...charges.values()]],
  );
}

/**
 * Puts a job back to pending after its executor reported that the provider
 * pushed back: no retry is used. Only the
 * lease holder can do this. Returns whether the lease matched.
 */
export async function deferRateLimited(sql: Sql, id: string, leaseToken: string, seconds: number, message: string): Promise<boolean> {
  const rows = await sql.query<{ id: string }>(
    `WITH before AS (
       SELECT id, locked_by, attempts, started_at FROM jobs WHERE id = $1 AND lease_token = $2::uuid AND status = 'running'
     ), u AS (
       UPDATE jobs j SET status = 'pending', locked_by = NULL, lease_token = NULL, lease_expires_at = NULL,
         error_message = $4,
         run_at = clock_timestamp() + make_interval(secs => $3), updated_at = clock_timestamp()
       FROM before b
       -- The lease is checked again here: a row lock waited for re-checks only this WHERE.
       WHERE j.id = b.id AND j.lease_token = $2::uuid AND j.status = 'running'
       RETURNING j.id
     ), ev AS (
       INSERT INTO job_events (job_id, event, worker_id, attempt, detail)
       SELECT b.id, 'rate_limited', b.locked_by, b.attempts, jsonb_build_object('retryAfterSeconds', $3::float8, 'startedAt', b.started_at)
       FROM before b JOIN u ON u.id = b.id
     )
     SELECT id FROM u`,
    [id, leaseToken, seconds, message],
  );
  return rows.length > 0;
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
  waiting_on: Array<{ id: string; name: string; status: string }> | null;
  rate_per_second: number | null;
  burst: number | null;
  tokens: number | null;
  paused_ms: number | null;
  max_running: number | null;
  running_with_key: number;
  live_workers: number;
  serving_workers: number;
  ahead: number;
}

/** Reads why a live job waits (null if the job is not live). */
export async function explainFacts(sql: Sql, id: string, liveWithinSeconds: number): Promise<ExplainRow | undefined> {
  const rows = await sql.query<ExplainRow>(
    `SELECT j.id, j.name, j.status, j.pending_dependencies, (EXTRACT(EPOCH FROM j.run_at - now()) * 1000)::float8 AS run_in_ms,
       j.queue, j.tags, j.tenant, j.rate_limit_key, j.rate_limit_cost, j.concurrency_key, j.locked_by, j.started_at,
       (SELECT json_agg(json_build_object('id', p.id, 'name', p.name, 'status', p.status) ORDER BY p.id)
          FROM job_dependencies e JOIN jobs p ON p.id = e.depends_on_id WHERE e.job_id = j.id) AS waiting_on,
       rl.rate_per_second, rl.burst,
       CASE WHEN rl.key IS NULL THEN NULL WHEN rl.rate_per_second IS NULL THEN rl.tokens
            ELSE LEAST(rl.burst, rl.tokens + rl.rate_per_second * GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - rl.refilled_at)))
       END::float8 AS tokens,
       GREATEST(0, COALESCE(EXTRACT(EPOCH FROM rl.paused_until - clock_timestamp()) * 1000, 0))::float8 AS paused_ms,
       cl.max_running,
       (SELECT count(*) FROM jobs r WHERE r.status = 'running' AND r.concurrency_key = j.concurrency_key)::int AS running_with_key,
       (SELECT count(*) FROM workers w WHERE w.status = 'running'
          AND w.last_heartbeat_at > now() - make_interval(secs => $2))::int AS live_workers,
       (SELECT count(*) FROM workers w WHERE w.status = 'running' AND w.last_heartbeat_at > now() - make_interval(secs => $2)
          AND (w.queues IS NULL OR j.queue = ANY(w.queues)) AND j.tags <@ w.tags)::int AS serving_workers,
       (SELECT count(*) FROM jobs q WHERE q.status = 'pending' AND q.pending_dependencies = 0 AND q.run_at <= now()
          AND COALESCE(q.tenant, '') = COALESCE(j.tenant, '')
          AND (q.priority > j.priority OR (q.priority = j.priority AND (q.run_at, q.id) < (j.run_at, j.id))))::int AS ahead
     FROM jobs j
     LEFT JOIN rate_limits rl ON rl.key = j.rate_limit_key
     LEFT JOIN concurrency_limits cl ON cl.key = j.concurrency_key
     WHERE j.id = $1`,
    [id, liveWithinSeconds],
  );
  return rows[0];
}
