import type { WorkerFilter } from "../db/sql/limits";
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

  async claim(workerId: string, limit: number, leaseSeconds: number): Promise<ClaimRound> {
    if (limit <= 0) return { rows: [] };
    if (!this.flowMode) {
      const { rows, flowWaiting } = await this.store.claim({ workerId, limit, leaseSeconds, filter: this.filter });
      this.flowMode = flowWaiting;
      if (rows.length >= limit || !this.flowMode) return { rows };
      const more = await this.flow(workerId, limit - rows.length, leaseSeconds);
      return { rows: [...rows, ...more.rows], retryInMs: more.retryInMs };
    }
    return this.flow(workerId, limit, leaseSeconds);
  }

  /** Whether the last round found jobs that need the flow-control claim waiting. */
  get usingFlowControl(): boolean {
    return this.flowMode;
  }

  /**
   * Claims plain jobs ahead of free slots (`prefetch`), never through the
   * flow-control claim: rate-limit tokens and concurrency places are taken
   * only for jobs about to start.
   */
  async claimAhead(workerId: string, limit: number, leaseSeconds: number): Promise<JobRow[]> {
    if (limit <= 0 || this.flowMode) return [];
    const { rows, flowWaiting } = await this.store.claim({ workerId, limit, leaseSeconds, filter: this.filter });
    this.flowMode = flowWaiting;
    return rows;
  }

  private async flow(workerId: string, limit: number, leaseSeconds: number): Promise<ClaimRound> {
    const result = await flowClaim(this.store.db, { workerId, limit, leaseSeconds, filter: this.filter, rotation: this.rotation++ });
    this.flowMode = result.flowWaiting;
    return { rows: result.rows, retryInMs: result.flowWaiting ? result.retryInMs : undefined };
  }
}
