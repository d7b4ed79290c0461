import { flowJobsWaiting, type WorkerFilter } from "../db/sql/limits";
import type { JobRow } from "../db/sql/rows";
import type { JobStore } from "../db/store";
import { flowClaim } from "../limits/claim";

/** What one claim round got. */
export interface ClaimRound {
  rows: JobRow[];
  /** When a rate-limited key can start a job again, if jobs wait on one. */
  retryInMs?: number;
}

/**
 * Chooses the claim for each round. Plain jobs (no tenant, no rate-limit or
 * concurrency key) take the one-statement fast path. When that path leaves
 * slots free and jobs needing flow control are waiting, the worker switches
 * to the flow-control claim (which serves plain jobs too, as one more group
 * in the round-robin) until no such job waits.
 */
export class Claimer {
  private flowMode = false;
  private rotation = 0;

  constructor(
    private readonly store: JobStore,
    private readonly filter: WorkerFilter,
  ) {}

  /**
   * Claims up to `limit` jobs, of which at most `flowLimit` (the free slots)
   * may come from the flow-control claim: rate-limit tokens and concurrency
   * slots are taken only for jobs about to start, never for prefetched ones.
   */
  async claim(workerId: string, limit: number, leaseSeconds: number, flowLimit = limit): Promise<ClaimRound> {
    if (limit <= 0) return { rows: [] };
    if (!this.flowMode) {
      const rows = await this.store.claim({ workerId, limit, leaseSeconds, filter: this.filter });
      // Claimed rows carry the flag; with none claimed, ask.
      this.flowMode = rows.length > 0 ? rows[0].flow_waiting : await flowJobsWaiting(this.store.db, this.filter);
      if (rows.length >= flowLimit || !this.flowMode) return { rows };
      const more = await this.flow(workerId, flowLimit - rows.length, leaseSeconds);
      return { rows: [...rows, ...more.rows], retryInMs: more.retryInMs };
    }
    if (flowLimit <= 0) return { rows: [] };
    return this.flow(workerId, flowLimit, leaseSeconds);
  }

  private async flow(workerId: string, limit: number, leaseSeconds: number): Promise<ClaimRound> {
    const result = await flowClaim(this.store.db, { workerId, limit, leaseSeconds, filter: this.filter, rotation: this.rotation++ });
    this.flowMode = result.flowWaiting;
    return { rows: result.rows, retryInMs: result.flowWaiting ? result.retryInMs : undefined };
  }
}
