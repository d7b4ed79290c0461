import { checkText, LIMITS } from "../core/checks";
import { ValidationError } from "../core/errors";
import type { Database } from "../db/database";
import { deleteRateLimit, explainFacts, listRateLimits, upsertConcurrencyLimit, upsertRateLimit, upsertTenantWeight } from "../db/sql/limits";
import { explainFromFacts, type JobExplanation } from "./explain";
import { resolveRateLimit, type RateLimit, type RateLimitOptions } from "./rates";

/** Rate limits, concurrency caps, tenant weights, and why a job waits. */
export class LimitService {
  constructor(private readonly db: Database) {}

  /** See `JobManager.setRateLimit`. */
  async setRateLimit(key: string, options: RateLimitOptions): Promise<RateLimit> {
    const name = checkText(key, "key", LIMITS.keyLength, false);
    const { ratePerSecond, burst } = resolveRateLimit(options);
    await upsertRateLimit(this.db, name, ratePerSecond, burst);
    return (await this.getRateLimits()).find((r) => r.key === name) as RateLimit;
  }

  /** Removes a key's rate limit (and any pause); returns whether it had one. */
  removeRateLimit(key: string): Promise<boolean> {
    return deleteRateLimit(this.db, checkText(key, "key", LIMITS.keyLength, false));
  }

  /** Every rate limit, with the tokens available now. */
  async getRateLimits(): Promise<RateLimit[]> {
    return (await listRateLimits(this.db)).map((r) => ({ key: r.key, perSecond: r.rate_per_second, burst: r.burst, tokens: r.tokens, pausedUntil: r.paused_until }));
  }

  /** See `JobManager.setConcurrencyLimit`. */
  async setConcurrencyLimit(key: string, maxRunning: number | null): Promise<void> {
    const name = checkText(key, "key", LIMITS.keyLength, false);
    if (maxRunning !== null && (!Number.isInteger(maxRunning) || maxRunning < 1 || maxRunning > 1_000_000)) {
      throw new ValidationError("maxRunning", `must be an integer from 1 to 1000000, or null (got ${String(maxRunning)})`);
    }
    await upsertConcurrencyLimit(this.db, name, maxRunning);
  }

  /** See `JobManager.setTenantWeight`. */
  async setTenantWeight(tenant: string, weight: number): Promise<void> {
    const name = checkText(tenant, "tenant", LIMITS.keyLength, false);
    if (!Number.isInteger(weight) || weight < 1 || weight > 1000) throw new ValidationError("weight", `must be an integer from 1 to 1000 (got ${String(weight)})`);
    await upsertTenantWeight(this.db, name, weight);
  }

  /**
   * Why a live job is not running (undefined if it is not live): see
   * `JobManager.explain`, which also answers for archived jobs.
   */
  async explainLive(id: string, options: { liveWithinSeconds?: number } = {}): Promise<JobExplanation | undefined> {
    const facts = await explainFacts(this.db, checkText(id, "id", LIMITS.idLength, false), options.liveWithinSeconds ?? 60);
    return facts ? explainFromFacts(facts) : undefined;
  }
}
