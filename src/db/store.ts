import { sqlState, SqlState, type Database } from "./database";
import { finishDownstream } from "./sql/cancel";
import { claimJobs, type Claimed, failExpiredLeases, releaseJobs, renewLeases, retryExpiredLeases, type ClaimRequest } from "./sql/claim";
import { archiveCompleted, recordFailure, unblockDependents, type Completion, type Failure, type FailureOutcome } from "./sql/finish";
import { leasedWithTokens, unblockAndHandOff, type HandoffRequest } from "./sql/handoff";
import { deferRateLimited, pauseRateLimitKey } from "./sql/limits";
import type { JobRow } from "./sql/rows";
import { jobSteps, parkJob, saveStep, type ParkRequest, type StepRow } from "./sql/workflow";

/**
 * The worker's seam to the database: claim, complete, fail, renew, release
 * and rescue. Each method is one transaction built from the statements in
 * ./sql; nothing above this class writes SQL for these paths.
 */
export class JobStore {
  constructor(readonly db: Database) {}

  /** Claims up to `limit` ready jobs for a worker. */
  claim(request: ClaimRequest): Promise<Claimed> {
    if (request.limit <= 0) return Promise.resolve({ rows: [], flowWaiting: false });
    return claimJobs(this.db, request);
  }

  /**
   * Records completed attempts in one transaction: archives those whose lease
   * still matches and unblocks their dependents. With `handoff`, dependents
   * that become ready are leased to that worker in the same update, within
   * its limit (see {@link unblockAndHandOff}). Returns the ids accepted (the
   * rest lost their lease), how many dependents became ready for any worker,
   * and those handed over.
   */
  complete(completions: readonly Completion[], handoff?: HandoffRequest): Promise<{ accepted: string[]; ready: number; handed: JobRow[] }> {
    return retryTransient(() =>
      this.db.transaction(async (sql) => {
        const accepted = await archiveCompleted(sql, completions);
        // Its COMMIT goes out with it: the whole completion takes two round trips.
        if (handoff !== undefined && handoff.tokens.length > 0) return { accepted, ...(await unblockAndHandOff(sql, accepted, handoff, { final: true })) };
        const ready = await unblockDependents(sql, accepted, { final: true });
        return { accepted, ready, handed: [] };
      }),
    );
  }

  /** Records a failed attempt: a retry later, or final failure with its dependents cancelled. */
  fail(failure: Failure): Promise<FailureOutcome> {
    return retryTransient(() =>
      this.db.transaction(async (sql) => {
        const outcome = await recordFailure(sql, failure);
        if (outcome === "failed") await finishDownstream(sql, [{ id: failure.id, status: "failed" }]);
        return outcome;
      }),
    );
  }

  /**
   * Parks a running job whose lease still matches (a parent waiting for its
   * children, a sleep): pending, without a lease or a slot, until its
   * children end and its run time comes. Returns whether the lease matched.
   */
  park(request: ParkRequest): Promise<boolean> {
    return retryTransient(() => parkJob(this.db, request));
  }

  /** A job's stored steps (`ctx.step`, `ctx.sleep`). */
  steps(jobId: string): Promise<StepRow[]> {
    return jobSteps(this.db, jobId);
  }

  /** Stores a step's result (or a sleep's wake time) while the attempt's lease holds. */
  saveStep(step: Parameters<typeof saveStep>[1]): Promise<"saved" | "exists" | "lost"> {
    return saveStep(this.db, step);
  }

  /** Renews a worker's leases; returns the lease tokens it still holds. */
  renew(workerId: string, leaseTokens: readonly string[], leaseSeconds: number): Promise<string[]> {
    return renewLeases(this.db, workerId, leaseTokens, leaseSeconds);
  }

  /**
   * Puts a job whose provider pushed back to pending without using a retry,
   * and pauses its rate-limit key for every worker. Returns whether the lease matched.
   */
  deferRateLimited(job: { id: string; leaseToken: string; rateLimitKey: string | null }, seconds: number, message: string): Promise<boolean> {
    return retryTransient(() =>
      this.db.transaction(async (sql) => {
        const held = await deferRateLimited(sql, job.id, job.leaseToken, seconds, message);
        if (held && job.rateLimitKey !== null) await pauseRateLimitKey(sql, job.rateLimitKey, seconds);
        return held;
      }),
    );
  }

  /** Returns jobs to pending without using a retry (shutdown gave up on them). */
  release(leases: ReadonlyArray<{ id: string; leaseToken: string }>, reason: string, options: { started?: boolean } = {}): Promise<string[]> {
    return releaseJobs(this.db, leases, reason, options);
  }

  /**
   * Returns to pending, without using a retry, the jobs still leased to
   * `workerId` under any of `tokens` (a handoff whose write committed but
   * whose reply never reached the worker). Returns their ids.
   */
  async releaseLeasedWith(workerId: string, tokens: readonly string[], reason: string): Promise<string[]> {
    const leased = await leasedWithTokens(this.db, workerId, tokens);
    return releaseJobs(this.db, leased.map((r) => ({ id: r.id, leaseToken: r.lease_token })), reason, { started: false });
  }

  /**
   * Rescues jobs whose lease expired: retried while retries are left, else
   * failed with dependents cancelled. Returns the counts.
   */
  async rescueExpired(batch = 1000): Promise<{ retried: number; failed: number }> {
    const retried = await retryExpiredLeases(this.db, batch);
    const failed = await retryTransient(() =>
      this.db.transaction(async (sql) => {
        const ids = await failExpiredLeases(sql, batch);
        if (ids.length > 0) await finishDownstream(sql, ids.map((id) => ({ id, status: "failed" as const })));
        return ids;
      }),
    );
    return { retried: retried.length, failed: failed.length };
  }
}

/** Retries a transaction that lost a deadlock or serialization race. */
export async function retryTransient<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      const state = sqlState(error);
      if ((state !== SqlState.deadlockDetected && state !== SqlState.serializationFailure) || attempt >= attempts) throw error;
    }
  }
}
