import type { Database } from "../db/database";
import { chargeBuckets, flowJobsWaiting, leaseChosen, lockAndRefillBuckets, lockCandidates, lockConcurrency, type WorkerFilter } from "../db/sql/limits";
import type { JobRow } from "../db/sql/rows";
import { allocate, blockedKeys, budgetsFrom } from "./allocate";

/** What a flow-control claim returns. */
export interface FlowClaimResult {
  rows: JobRow[];
  /** Whether jobs needing the flow-control claim still wait (stay in flow mode). */
  flowWaiting: boolean;
  /** When a rate-limited key can start a job again, if one is blocked now. */
  retryInMs: number | undefined;
}

/** Most tenant groups one claim looks at. */
const MAX_GROUPS = 256;

/**
 * The claim used when jobs carry tenants, rate-limit keys or concurrency keys.
 * One transaction: lock and refill the buckets, lock the caps and count what
 * runs, lock the head of each tenant's queue (SKIP LOCKED), pick by weighted
 * round-robin within the budgets, lease the picks, charge the buckets. Locking
 * the limit rows first serialises the claims that could exceed a limit, so
 * limits hold exactly across all workers.
 */
export async function flowClaim(
  db: Database,
  request: { workerId: string; limit: number; leaseSeconds: number; filter: WorkerFilter; rotation: number },
): Promise<FlowClaimResult> {
  return db.transaction(async (sql) => {
    const buckets = await lockAndRefillBuckets(sql);
    const caps = await lockConcurrency(sql);
    const budgets = budgetsFrom(buckets, caps);
    const blocked = blockedKeys(budgets);
    const candidates = await lockCandidates(sql, {
      perGroup: request.limit,
      maxGroups: MAX_GROUPS,
      filter: request.filter,
      blockedRateKeys: blocked.rate,
      blockedConcurrencyKeys: blocked.concurrency,
    });
    const { chosen, charges } = allocate(candidates, budgets, request.limit, request.rotation);
    const rows = chosen.length > 0 ? await leaseChosen(sql, chosen, request.workerId, request.leaseSeconds) : [];
    await chargeBuckets(sql, charges);
    const flowWaiting = await flowJobsWaiting(sql, request.filter);
    let retryInMs: number | undefined;
    for (const b of buckets) {
      const tokens = b.tokens - (charges.get(b.key) ?? 0);
      let ms: number | undefined;
      if (b.paused_ms > 0) ms = b.paused_ms;
      else if (b.rate_per_second !== null && tokens < 1) ms = ((1 - tokens) / b.rate_per_second) * 1000;
      if (ms !== undefined) retryInMs = retryInMs === undefined ? ms : Math.min(retryInMs, ms);
    }
    const order = new Map(chosen.map((id, i) => [id, i]));
    rows.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
    return { rows, flowWaiting, retryInMs };
  });
}
