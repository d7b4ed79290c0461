import { orderBatch } from "./dependencies";
import { ValidationError } from "../core/errors";
import { type CreateTaskInput, type JsonValue, type Task } from "../core/types";
import { checkText, LIMITS, normalizeJobInput } from "./validation";
import { randomUUID } from "node:crypto";
import { deleteRateLimit, explainFacts, listRateLimits, upsertConcurrencyLimit, upsertRateLimit, upsertTenantWeight } from "../db/sql/limits";
import { insertTask, readTask } from "../db/sql/tasks";
import { explainFromFacts, resolveRateLimit, type JobExplanation, type RateLimit, type RateLimitOptions } from "../limits";
import { JobManagerCore } from "./manager-core";

/** Flow control (rate limits, concurrency caps, tenant weights, explain) and tasks, on top of {@link JobManagerCore}. */
export class FlowControlManager extends JobManagerCore {
  /**
   * Sets the rate limit of a key (e.g. a provider), stored in the database so
   * that every worker obeys it together: `setRateLimit("openai", { perSecond: 120 })`,
   * or `{ perMinute: 90_000, burst: 5_000 }` with `rateLimitCost` as tokens.
   */
  async setRateLimit(key: string, options: RateLimitOptions): Promise<RateLimit> {
    const name = checkText(key, "key", LIMITS.keyLength, false);
    const { ratePerSecond, burst } = resolveRateLimit(options);
    await upsertRateLimit(this.db, name, ratePerSecond, burst);
    return (await this.getRateLimits()).find((r) => r.key === name) as RateLimit;
  }

  /** Removes a key's rate limit (and any pause); returns whether it had one. */
  async removeRateLimit(key: string): Promise<boolean> {
    return deleteRateLimit(this.db, checkText(key, "key", LIMITS.keyLength, false));
  }

  /** Every rate limit, with the tokens available now. */
  async getRateLimits(): Promise<RateLimit[]> {
    return (await listRateLimits(this.db)).map((r) => ({ key: r.key, perSecond: r.rate_per_second, burst: r.burst, tokens: r.tokens, pausedUntil: r.paused_until }));
  }

  /** At most `maxRunning` jobs with this concurrency key run at once, across all workers; `null` removes the cap. */
  async setConcurrencyLimit(key: string, maxRunning: number | null): Promise<void> {
    const name = checkText(key, "key", LIMITS.keyLength, false);
    if (maxRunning !== null && (!Number.isInteger(maxRunning) || maxRunning < 1 || maxRunning > 1_000_000)) {
      throw new ValidationError("maxRunning", `must be an integer from 1 to 1000000, or null (got ${String(maxRunning)})`);
    }
    await upsertConcurrencyLimit(this.db, name, maxRunning);
  }

  /** A tenant's share when several tenants have ready jobs (default 1): weight 3 gets three jobs per round. */
  async setTenantWeight(tenant: string, weight: number): Promise<void> {
    const name = checkText(tenant, "tenant", LIMITS.keyLength, false);
    if (!Number.isInteger(weight) || weight < 1 || weight > 1000) throw new ValidationError("weight", `must be an integer from 1 to 1000 (got ${String(weight)})`);
    await upsertTenantWeight(this.db, name, weight);
  }

  /**
   * Why a job is not running: waiting on named dependencies, `runAt` in the
   * future, a rate limit (and when its next token comes), a full concurrency
   * key, no live worker for its queue or tags, or queued behind N jobs.
   * `null` for an unknown id.
   */
  async explain(id: string, options: { liveWithinSeconds?: number } = {}): Promise<JobExplanation | null> {
    const facts = await explainFacts(this.db, checkText(id, "id", LIMITS.idLength, false), options.liveWithinSeconds ?? 60);
    if (facts) return explainFromFacts(facts);
    const archived = await this.getJob(id);
    if (!archived) return null;
    const summary = `finished: ${archived.status}${archived.errorMessage ? ` (${archived.errorMessage})` : ""}`;
    return { id, status: archived.status, reasons: [], summary };
  }

  /**
   * Creates a task: a group of jobs for one tenant whose progress `getTask`
   * reports. The jobs (which may depend on each other, as in `createJobs`)
   * get the task's tenant unless they name their own. Atomic.
   */
  async createTask(input: CreateTaskInput): Promise<Task> {
    if (typeof input !== "object" || input === null) throw new ValidationError("task", "must be an object");
    const id = input.id === undefined ? randomUUID() : checkText(input.id, "id", LIMITS.idLength, false);
    const tenant = input.tenant === undefined || input.tenant === null ? null : checkText(input.tenant, "tenant", LIMITS.keyLength, false);
    const name = checkText(input.name, "name", LIMITS.nameLength, false);
    if (!Array.isArray(input.jobs) || input.jobs.length === 0) throw new ValidationError("jobs", "must be a non-empty array of jobs");
    const ordered = orderBatch(input.jobs.map((job, i) => normalizeJobInput(job, `jobs[${i}].`)));
    const { rows, ready } = await this.retryDeadlocks(false, () =>
      this.db.transaction(async (sql) => {
        if (await readTask(sql, id)) throw new ValidationError("id", `a task with id ${JSON.stringify(id)} already exists`);
        await insertTask(sql, { id, tenant, name, totalJobs: ordered.length });
        return this.writeJobs(sql, ordered, { taskId: id, parentId: null, tenant });
      }),
    );
    if (ready) this.notifier.poke();
    this.wroteJobs(rows.length);
    return (await this.getTask(id)) as Task;
  }

  /** A task with its jobs counted by status and the percentage finished; `null` if unknown. */
  async getTask(id: string): Promise<Task | null> {
    const row = await readTask(this.db, checkText(id, "id", LIMITS.idLength, false));
    if (!row) return null;
    const counts = { pending: row.pending, running: row.running, completed: row.completed, failed: row.failed, cancelled: row.cancelled };
    const finished = row.completed + row.failed + row.cancelled;
    return {
      id: row.id,
      tenant: row.tenant,
      name: row.name,
      totalJobs: row.total_jobs,
      counts,
      percentDone: row.total_jobs === 0 ? 100 : Math.round((finished / row.total_jobs) * 1000) / 10,
      done: finished >= row.total_jobs,
      currentStep: (row.current_step ?? null) as JsonValue | null,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }
}
