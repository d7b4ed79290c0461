import type { JobStore } from "../db/store";
import type { Job, JsonValue } from "../core/types";
import { ValidationError } from "../core/errors";
import { storableJson } from "../core/json";
import { withFields, type Logger } from "../core/logger";
import type { AttemptAbort } from "./abort";
import { backoffMs, sleep, type Clock } from "../core/clock";
import type { CompletionBatcher } from "./completer";
import { pickExecutor } from "./executors";
import { setTaskStep } from "../db/sql/tasks";
import { AttemptLog } from "./joblog";
import { DelegatedJobError, NonRetryableError, RateLimitedError, type DelegateOptions, type DelegateSpec, type Executor, type JobContext } from "./types";
import type { Suspension, Workflow } from "./workflow";

/** A claimed job while a worker runs it. */
export interface RunningJob {
  readonly job: Job;
  readonly leaseToken: string;
  readonly dependencyResults: Record<string, JsonValue | null>;
  readonly abort: AttemptAbort;
  /** Milliseconds it waited here, claimed ahead of a free slot, before it started (`prefetch`). */
  readonly heldMs?: number;
  /** executing → completing/failing/parking, or abandoned (shutdown, lease lost): then the worker records nothing. */
  phase: "executing" | "completing" | "failing" | "parking" | "shutdown" | "lease-lost";
  abandon(reason: "shutdown" | "lease-lost"): void;
}

/** What {@link runAttempt} needs from its worker. */
export interface AttemptDeps {
  workerId: string;
  executors: readonly Executor[];
  logger: Logger;
  clock: Clock;
  store: JobStore;
  completer: CompletionBatcher;
  retryBackoff: { baseSeconds: number; maxSeconds: number };
  random: () => number;
  onComplete(job: Job, result: JsonValue | null): void;
  onFail(job: Job, error: string, outcome: "retried" | "failed" | "refused", retryInMs: number): void;
  /** The job went back to pending because its provider pushed back; it may run again in `retryInMs`. */
  onRateLimited(job: Job, retryInMs: number): void;
  /** The executor ran for `ms` (for `prefetch: "auto"`). */
  ran(ms: number): void;
  /** The job was parked (waiting for its children, or sleeping). */
  onParked(job: Job, suspension: Suspension): void;
  /** The durable workflow of an attempt (`ctx.delegate`, `ctx.step`, `ctx.sleep`). */
  workflow(entry: RunningJob): Workflow;
  /**
   * Frees the job's slot: called once the executor has returned and its
   * result is handed to the completion batcher, so the slot takes new work
   * while the completion is written (the job stays `running` in the database,
   * under its lease, until then).
   */
  release(): void;
}

class JobTimeoutError extends Error {
  override name = "JobTimeoutError";
}

/**
 * Runs one attempt of a claimed job and records its outcome: the result
 * (batched with other completions), or the failure (retried with backoff,
 * or final). An abandoned attempt records nothing.
 */
export async function runAttempt(entry: RunningJob, deps: AttemptDeps): Promise<void> {
  const { job, abort } = entry;
  const logger = withFields(deps.logger, { jobId: job.id });
  const log = new AttemptLog(deps.store.db, job.id, job.attempts, logger, deps.clock);
  const timeout =
    job.timeoutSeconds !== null
      ? deps.clock.setTimeout(() => abort.abort(new JobTimeoutError(`timed out after ${job.timeoutSeconds} s`)), job.timeoutSeconds * 1000)
      : undefined;
  const workflow = deps.workflow(entry);
  try {
    const executor = pickExecutor(deps.executors, job);
    const ctx = jobContext(entry, deps, logger, log, workflow);
    logger.debug("job started", { executor: executor.name, attempt: job.attempts });
    const began = performance.now();
    const value = await abort.race(executor.execute(job, ctx)).finally(() => deps.ran(performance.now() - began));
    if (workflow.suspension && entry.phase === "executing") return await park(entry, workflow.suspension, deps, logger);
    const result = toJsonResult(value);
    await log.close();
    if (entry.phase !== "executing") return;
    entry.phase = "completing";
    deps.release();
    const accepted = await deps.completer.add({ id: job.id, leaseToken: entry.leaseToken, result, heldMs: entry.heldMs });
    if (accepted) {
      logger.debug("job completed");
      deps.onComplete(job, result);
    } else {
      logger.warn("completion refused: the job's lease was lost (reclaimed by another worker or cancelled)");
    }
  } catch (error) {
    if (entry.phase !== "executing") {
      logger.info("attempt abandoned", { reason: entry.phase });
      return;
    }
    if (workflow.suspension) return await park(entry, workflow.suspension, deps, logger);
    entry.phase = "failing";
    if (error instanceof RateLimitedError) {
      await deferForRateLimit(entry, error, deps, logger);
      return;
    }
    await recordFailure(entry, error, deps, logger);
  } finally {
    deps.clock.clearTimeout(timeout);
    await log.close();
  }
}

/** What the executor of one attempt is given besides the job. */
function jobContext(entry: RunningJob, deps: AttemptDeps, logger: Logger, log: AttemptLog, workflow: Workflow): JobContext {
  const { job, abort } = entry;
  return {
    job,
    workerId: deps.workerId,
    attempt: job.attempts,
    dependencyResults: entry.dependencyResults,
    logger,
    get signal() {
      return abort.signal;
    },
    rateLimited: (options = {}) => {
      const seconds = options.retryAfterSeconds ?? 1;
      if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0 || seconds > 86_400) {
        throw new NonRetryableError(`ctx.rateLimited: retryAfterSeconds must be a number of seconds from 0 to 86400 (got ${String(seconds)})`);
      }
      throw new RateLimitedError(seconds);
    },
    log,
    delegate: ((spec: DelegateSpec, options: DelegateOptions = {}) => workflow.delegate([spec], options, true).then((out) => out[0])) as JobContext["delegate"],
    delegateAll: ((specs: DelegateSpec[], options: DelegateOptions = {}) => workflow.delegate(specs, options, false)) as JobContext["delegateAll"],
    step: (name, fn) => workflow.step(name, fn),
    sleep: (name, ms) => workflow.sleep(name, ms),
    task: {
      id: job.taskId,
      setStep: async (step) => {
        if (job.taskId === null) throw new Error(`job ${JSON.stringify(job.id)} belongs to no task`);
        await setTaskStep(deps.store.db, job.taskId, step);
      },
    },
  };
}

/**
 * Ends an attempt that waits (for children, or for time): the job goes back
 * to pending without a lease, to run again once it may go on. Whatever the
 * executor still runs is aborted (its writes are refused: the lease is gone).
 */
async function park(entry: RunningJob, suspension: Suspension, deps: AttemptDeps, logger: Logger): Promise<void> {
  const { job } = entry;
  entry.phase = "parking";
  const request = {
    id: job.id,
    leaseToken: entry.leaseToken,
    workerId: deps.workerId,
    children: [...suspension.children],
    runAt: suspension.runAt === null ? null : new Date(suspension.runAt),
    waitUntil: suspension.waitUntil === null ? null : new Date(suspension.waitUntil),
  };
  try {
    const held = await deps.store.park(request);
    if (held) {
      logger.debug("job parked", { waitingFor: request.children, until: request.runAt, deadline: request.waitUntil });
      deps.onParked(job, suspension);
    } else {
      logger.warn("parking refused: the job's lease was lost");
    }
  } catch (error) {
    logger.error("could not park the job; it runs again after its lease expires", { error: String(error) });
  } finally {
    entry.abort.abort(new Error("the job is parked"));
  }
}

async function deferForRateLimit(entry: RunningJob, error: RateLimitedError, deps: AttemptDeps, logger: Logger): Promise<void> {
  const { job } = entry;
  try {
    const held = await deps.store.deferRateLimited({ id: job.id, leaseToken: entry.leaseToken, rateLimitKey: job.rateLimitKey }, error.retryAfterSeconds, error.message);
    if (held) {
      logger.warn("provider pushed back; job returned to pending without using a retry", { retryAfterSeconds: error.retryAfterSeconds, rateLimitKey: job.rateLimitKey });
      deps.onRateLimited(job, error.retryAfterSeconds * 1000);
    } else {
      logger.warn("rate-limit deferral refused: the job's lease was lost");
    }
  } catch (writeError) {
    logger.error("could not return the rate-limited job to pending; it runs again after its lease expires", { error: String(writeError) });
  }
}

async function recordFailure(entry: RunningJob, error: unknown, deps: AttemptDeps, logger: Logger): Promise<void> {
  const { job } = entry;
  const message = error instanceof Error ? error.message || error.name : String(error);
  const final = error instanceof NonRetryableError || (error instanceof DelegatedJobError && !error.retryable);
  const delayMs = backoffMs(job.retryCount, deps.retryBackoff.baseSeconds * 1000, deps.retryBackoff.maxSeconds * 1000, deps.random);
  const failure = { id: job.id, leaseToken: entry.leaseToken, error: message, retryDelaySeconds: delayMs / 1000, final, heldMs: entry.heldMs };
  for (let attempt = 0; ; attempt++) {
    try {
      const outcome = await deps.store.fail(failure);
      if (outcome === "retried") logger.warn("job failed; will retry", { error: message, retryInMs: delayMs, retryCount: job.retryCount + 1 });
      else if (outcome === "failed") logger.error("job failed", { error: message, final: true });
      else logger.warn("failure refused: the job's lease was lost", { error: message });
      deps.onFail(job, message, outcome, delayMs);
      return;
    } catch (writeError) {
      // The database may be restarting: keep trying while the lease could still be ours.
      if (attempt >= 8) {
        logger.error("could not record the failure; the job runs again after its lease expires", { error: String(writeError) });
        return;
      }
      await sleep(deps.clock, backoffMs(attempt, 200, 5000, deps.random));
    }
  }
}

/** The executor's return value as a JSON result; a value JSON cannot hold fails the job for good. */
function toJsonResult(value: unknown): JsonValue | null {
  if (value === undefined || value === null) return null;
  try {
    return storableJson(value, "result", "lenient");
  } catch (error) {
    if (error instanceof ValidationError) throw new NonRetryableError(`the executor's result is not storable JSON: ${error.message}`);
    throw error;
  }
}
