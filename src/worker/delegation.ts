import type { JobRow } from "../db/sql/rows";
import type { JobManager } from "../jobs/JobManager";
import type { CreateJobInput, Job, JsonValue } from "../core/types";
import type { Logger } from "../core/logger";
import { sleep, type Clock } from "../core/clock";
import { NonRetryableError } from "./types";

/** What delegation needs from the worker. */
export interface DelegationDeps {
  jobManager: JobManager;
  clock: Clock;
  logger: Logger;
  /** Runs a claimed job to the end in the caller's slot. */
  runInline(row: JobRow): Promise<void>;
  /**
   * The child `id` leased to this worker, to run now: one it already holds
   * (claimed ahead), else claimed by id if it is ready and free; undefined
   * otherwise (or if its lease ran out before it could start).
   */
  claimChild(id: string): Promise<JobRow | undefined>;
}

/** Options of `ctx.delegate` and `ctx.delegateAll`. */
export interface DelegateOptions {
  wait?: boolean;
  timeoutSeconds?: number;
}

/** The child jobs a parent creates, and the waiting that keeps the parent's slot useful. */
export class Delegation {
  constructor(
    private readonly deps: DelegationDeps,
    private readonly parent: Job,
    private readonly signal: AbortSignal,
  ) {}

  async delegateAll(specs: CreateJobInput[], options: DelegateOptions = {}): Promise<Job[] | Array<JsonValue | null>> {
    if (!Array.isArray(specs) || specs.length === 0) throw new NonRetryableError("ctx.delegateAll: give a non-empty array of job specs");
    const timeout = options.timeoutSeconds;
    if (timeout !== undefined && (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout <= 0)) {
      throw new NonRetryableError(`ctx.delegate: timeoutSeconds must be a positive number (got ${String(timeout)})`);
    }
    const children = await this.deps.jobManager.createJobs(specs, { parent: { id: this.parent.id, tenant: this.parent.tenant, taskId: this.parent.taskId } });
    this.deps.logger.debug("delegated", { childIds: children.map((c) => c.id) });
    if (options.wait !== true) return children;
    const deadline = timeout === undefined ? Number.POSITIVE_INFINITY : this.deps.clock.now() + timeout * 1000;
    const results: Array<JsonValue | null> = [];
    for (const child of children) {
      const done = await this.awaitChild(child.id, deadline, children, timeout);
      if (done.status !== "completed") {
        await this.cancelUnfinished(children);
        throw new Error(`delegated job ${JSON.stringify(child.id)} ${done.status}${done.errorMessage ? `: ${done.errorMessage}` : ""}`);
      }
      results.push(done.result);
    }
    return results;
  }

  /** Waits for a child to finish, running it here whenever it is ready and free. */
  private async awaitChild(id: string, deadline: number, all: Job[], timeout: number | undefined): Promise<Job> {
    let pause = 10;
    for (;;) {
      if (this.signal.aborted) throw this.signal.reason instanceof Error ? this.signal.reason : new Error("aborted");
      if (this.deps.clock.now() >= deadline) {
        await this.cancelUnfinished(all);
        throw new NonRetryableError(`delegated job ${JSON.stringify(id)} did not finish within ${timeout} s; it was cancelled`);
      }
      const job = await this.deps.jobManager.getJob(id);
      if (!job) throw new NonRetryableError(`delegated job ${JSON.stringify(id)} disappeared`);
      if (job.archived) return job;
      const row = await this.deps.claimChild(id);
      if (row) {
        await this.deps.runInline(row);
        pause = 10;
        continue;
      }
      await sleep(this.deps.clock, Math.min(pause, Math.max(1, deadline - this.deps.clock.now())));
      pause = Math.min(pause * 2, 500);
    }
  }

  private async cancelUnfinished(children: Job[]): Promise<void> {
    for (const child of children) {
      await this.deps.jobManager.cancelJob(child.id, { cascade: true, reason: `cancelled: its parent ${JSON.stringify(this.parent.id)} stopped waiting` }).catch(() => undefined);
    }
  }
}
