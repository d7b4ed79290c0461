import type { BucketRow, CandidateRow, ConcurrencyRow } from "../db/sql/limits";

/** What the allocation decided. */
export interface Allocation {
  /** Candidate ids to lease, in the order they were picked. */
  chosen: string[];
  /** Tokens to charge per rate-limit key. */
  charges: Map<string, number>;
}

/** Remaining budgets of the keys that have limits. */
export interface Budgets {
  buckets: Map<string, { tokens: number; burst: number }>;
  slots: Map<string, number>;
}

/** Builds budgets from the locked rows. Paused keys get no tokens. */
export function budgetsFrom(buckets: readonly BucketRow[], caps: readonly ConcurrencyRow[]): Budgets {
  return {
    buckets: new Map(
      buckets.map((b) => [b.key, { tokens: b.paused_ms > 0 ? Number.NEGATIVE_INFINITY : b.rate_per_second === null ? Number.POSITIVE_INFINITY : b.tokens, burst: b.burst }]),
    ),
    slots: new Map(caps.map((c) => [c.key, Math.max(0, c.max_running - c.running)])),
  };
}

/** Keys a candidate query should leave out: no token left, paused, or cap full. */
export function blockedKeys(budgets: Budgets): { rate: string[]; concurrency: string[] } {
  return {
    rate: [...budgets.buckets].filter(([, b]) => b.tokens < 1).map(([key]) => key),
    concurrency: [...budgets.slots].filter(([, n]) => n <= 0).map(([key]) => key),
  };
}

/**
 * A job may start when its key holds enough tokens for its cost; a job that
 * costs more than the whole burst may start on a full bucket (and leaves it
 * in debt), so that it is never starved.
 */
function affordable(bucket: { tokens: number; burst: number }, cost: number): boolean {
  return bucket.tokens >= Math.min(cost, bucket.burst);
}

/**
 * Picks up to `limit` candidates: weighted round-robin across tenant groups
 * (a group of weight w takes up to w jobs per round), each group's jobs in
 * claim order, skipping jobs whose key has no budget left. `startAt` rotates
 * which group goes first, so no tenant is always first.
 */
export function allocate(candidates: readonly CandidateRow[], budgets: Budgets, limit: number, startAt: number): Allocation {
  const groups = new Map<string, { weight: number; queue: CandidateRow[] }>();
  for (const c of candidates) {
    const group = groups.get(c.grp) ?? { weight: Math.max(1, c.weight), queue: [] };
    group.queue.push(c);
    groups.set(c.grp, group);
  }
  const order = [...groups.keys()].sort();
  const rotated = order.length > 0 ? [...order.slice(startAt % order.length), ...order.slice(0, startAt % order.length)] : [];
  const chosen: string[] = [];
  const charges = new Map<string, number>();
  let progressed = true;
  while (chosen.length < limit && progressed) {
    progressed = false;
    for (const name of rotated) {
      const group = groups.get(name) as { weight: number; queue: CandidateRow[] };
      let taken = 0;
      while (taken < group.weight && chosen.length < limit && group.queue.length > 0) {
        const job = group.queue.shift() as CandidateRow;
        const bucket = job.rate_limit_key === null ? undefined : budgets.buckets.get(job.rate_limit_key);
        const slots = job.concurrency_key === null ? undefined : budgets.slots.get(job.concurrency_key);
        if ((bucket && !affordable(bucket, job.rate_limit_cost)) || (slots !== undefined && slots <= 0)) continue;
        if (bucket && job.rate_limit_key !== null) {
          bucket.tokens -= job.rate_limit_cost;
          charges.set(job.rate_limit_key, (charges.get(job.rate_limit_key) ?? 0) + job.rate_limit_cost);
        }
        if (slots !== undefined && job.concurrency_key !== null) budgets.slots.set(job.concurrency_key, slots - 1);
        chosen.push(job.id);
        taken++;
        progressed = true;
      }
    }
  }
  return { chosen, charges };
}
