import { ident, sql, T, type Fragment, type Params } from "./template";

/**
 * Conditions that several statements share, each written once. Aliases are
 * passed in; parameters are named.
 */

/** The filter a worker applies to what it runs. */
export interface WorkerFilter {
  /** Queues served; null for every queue. */
  queues: string[] | null;
  /** The worker's tags: a job runs here only if its tags are a subset. */
  tags: string[];
  /** Tenants served; null for every tenant (and jobs without one). @defaultValue null */
  tenants?: string[] | null;
}

/** Which parts of a filter are set: statements with a filter are made once per shape. */
export interface FilterShape {
  queues: boolean;
  tags: boolean;
  tenants: boolean;
}

/** The shape of a filter. */
export function shapeOf(filter: WorkerFilter): FilterShape {
  return { queues: filter.queues !== null, tags: filter.tags.length > 0, tenants: (filter.tenants ?? null) !== null };
}

/** A shape's name, for `variants`. */
export function shapeKey(shape: FilterShape): string {
  return `${shape.queues ? "q" : "-"}${shape.tags ? "t" : "-"}${shape.tenants ? "n" : "-"}`;
}

/** The filter as statement parameters (`queues`, `tags` and `tenants`). */
export function filterValues(filter: WorkerFilter): { queues: string[] | null; tags: string[]; tenants: string[] | null } {
  return { queues: filter.queues, tags: filter.tags, tenants: filter.tenants ?? null };
}

/**
 * `AND`-conditions for what a worker may claim, on table alias `alias`: its
 * filter (queues, tags, tenants), and no job of a paused queue (the paused
 * queues are read once per statement, an InitPlan, so every claim path sees
 * a pause that committed before it started). A worker without tags asks for
 * `tags = '{}'` rather than `tags <@ '{}'`: PostgreSQL estimates equality
 * from its statistics but guesses containment, and a bad guess turns the
 * claim's ordered index scan into a sort of the whole backlog.
 */
export function workerFilter(p: Params<WorkerFilter>, alias: string, shape: FilterShape): Fragment {
  const a = ident(alias);
  const tags = shape.tags ? sql` AND ${a}.tags <@ ${p.tags}::text[]` : sql` AND ${a}.tags = '{}'`;
  const queues = shape.queues ? sql` AND ${a}.queue = ANY(${p.queues}::text[])` : sql``;
  const tenants = shape.tenants ? sql` AND ${a}.tenant = ANY(${p.tenants}::text[])` : sql``;
  return sql`${tags}${queues}${tenants} AND ${a}.queue <> ALL ((SELECT COALESCE(array_agg(name), '{}') FROM ${T.paused_queues})::text[])`;
}

/** Ready: pending with every dependency finished (the rows of jobs_ready_idx). */
export function ready(alias: string): Fragment {
  const a = ident(alias);
  return sql`${a}.status = 'pending' AND ${a}.pending_dependencies = 0`;
}

/**
 * What the plain claim takes: ready and due, of the group '' of
 * jobs_ready_idx, without a rate-limit or concurrency key (the flow-control
 * claim takes those).
 */
export function plainReady(alias: string): Fragment {
  const a = ident(alias);
  return sql`${ready(alias)} AND COALESCE(${a}.tenant, '') = '' AND ${a}.run_at <= now()
         AND ${a}.rate_limit_key IS NULL AND ${a}.concurrency_key IS NULL`;
}

/** Ready and due jobs that need the flow-control claim (a tenant, a rate-limit or a concurrency key): jobs_ready_flow_idx. */
export function flowReady(alias: string): Fragment {
  const a = ident(alias);
  return sql`${ready(alias)}
         AND (${a}.tenant IS NOT NULL OR ${a}.rate_limit_key IS NOT NULL OR ${a}.concurrency_key IS NOT NULL)
         AND ${a}.run_at <= now()`;
}

/** The claim order: highest priority first, then earliest run time, then id. */
export function claimOrder(alias: string): Fragment {
  const a = ident(alias);
  return sql`${a}.priority DESC, ${a}.run_at, ${a}.id`;
}

/** A rate-limit bucket's tokens refilled to now (alias of a `rate_limits` row), capped at its burst. */
export function refilledTokens(alias: string): Fragment {
  const r = ident(alias);
  return sql`CASE WHEN ${r}.rate_per_second IS NULL THEN ${r}.tokens
            ELSE LEAST(${r}.burst, ${r}.tokens + ${r}.rate_per_second * GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - ${r}.refilled_at))) END`;
}

/** Milliseconds until a bucket's pause ends (0 when not paused). */
export function pausedMs(alias: string): Fragment {
  return sql`GREATEST(0, COALESCE(EXTRACT(EPOCH FROM ${ident(alias)}.paused_until - clock_timestamp()) * 1000, 0))::float8`;
}
