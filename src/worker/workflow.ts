import { LIMITS } from "../core/checks";
import type { Clock } from "../core/clock";
import { ValidationError } from "../core/errors";
import { storableJson } from "../core/json";
import type { Logger } from "../core/logger";
import type { CreateJobInput, Job, JsonValue } from "../core/types";
import type { StepRow } from "../db/sql/workflow";
import type { JobStore } from "../db/store";
import type { JobManager } from "../jobs/JobManager";
import { stoppedWaitingReason } from "../jobs/workflows";
import type { RunningJob } from "./runner";
import { DelegatedJobError, JobSuspended, NonRetryableError, type DelegateOptions, type DelegateSpec } from "./types";

/** What an attempt's workflow needs from its worker. */
export interface WorkflowDeps {
  jobManager: JobManager;
  store: JobStore;
  clock: Clock;
  logger: Logger;
  workerId: string;
}

/** Why an attempt ended parked, and until when: the children it waits for, a wake time, a deadline. */
export interface Suspension {
  children: Set<string>;
  /** Epoch milliseconds; null: as soon as the children allow. */
  runAt: number | null;
  /** Epoch milliseconds at which unfinished children are cancelled; null: no deadline. */
  waitUntil: number | null;
}

const MAX_SLEEP_MS = 366 * 86_400_000;
const RESERVED = /^(sleep|retry):/;

/**
 * One attempt's durable workflow (see docs/ARCHITECTURE.md, "Durable
 * workflows"): `ctx.delegate`, `ctx.step` and `ctx.sleep`. Nothing is
 * replayed from a log: an attempt runs the executor from the top, steps that
 * returned before give back their stored results, delegations find the
 * children they made, and waiting (for children, or for time) parks the job
 * without a slot or a lease until it may go on.
 */
export class Workflow {
  private unkeyed = 0;
  private readonly keys = new Set<string>();
  private readonly occurrences = new Map<string, number>();
  private stored?: Promise<Map<string, StepRow>>;
  private suspended?: Suspension;

  constructor(
    private readonly deps: WorkflowDeps,
    private readonly entry: RunningJob,
  ) {}

  /** Set once the attempt asked to wait: it ends parked, whatever the executor does next. */
  get suspension(): Suspension | undefined {
    return this.suspended;
  }

  /** `ctx.delegate` and `ctx.delegateAll`: the children's keys are taken at the call, in call order. */
  async delegate(specs: readonly DelegateSpec[], options: DelegateOptions, single: boolean): Promise<Job[] | Array<JsonValue | null>> {
    if (!Array.isArray(specs) || specs.length === 0) throw new NonRetryableError("ctx.delegateAll: give a non-empty array of job specs");
    const timeout = checkOptions(options, single);
    const keys = specs.map((spec) => this.keyOf(single ? (options.key ?? spec?.key) : spec?.key));
    const inputs = specs.map((spec) => withoutKey(spec));
    const { job, leaseToken } = this.entry;
    const children = await this.deps.jobManager.delegateChildren({ id: job.id, tenant: job.tenant, taskId: job.taskId, leaseToken }, inputs, keys, { detached: options.detached === true });
    if (!children) throw new Error("the job's lease was lost; its children were not created");
    this.deps.logger.debug("delegated", { childIds: children.map((c) => c.id) });
    if (options.wait !== true) return children;
    return this.results(children, keys, options, timeout);
  }

  /** The children's results once all completed; else the attempt parks until they end (or fails for one that did not complete). */
  private async results(children: Job[], keys: string[], options: DelegateOptions, timeout: number | undefined): Promise<Array<JsonValue | null>> {
    const results: Array<JsonValue | null> = [];
    const unfinished: string[] = [];
    for (const [i, child] of children.entries()) {
      if (!child.archived) unfinished.push(child.id);
      else if (child.status === "completed") results[i] = child.result;
      else if (await this.restorable(child, keys[i], options)) {
        await this.deps.jobManager.retryJob(child.id, { downstream: true });
        unfinished.push(child.id);
      } else throw this.endedError(child, keys[i], options, timeout);
    }
    if (unfinished.length === 0) return results;
    const deadline = timeout === undefined ? null : Math.min(...children.map((c) => c.createdAt.getTime())) + timeout * 1000;
    if (deadline !== null && this.deps.clock.now() >= deadline) {
      for (const id of unfinished) await this.deps.jobManager.cancelJob(id, { cascade: true, reason: stoppedWaitingReason(this.entry.job.id) }).catch(() => undefined);
      throw new DelegatedJobError(unfinished[0], "timeout", `delegated job ${JSON.stringify(unfinished[0])} did not finish within ${timeout} s; it was cancelled`, false);
    }
    this.suspend({ children: unfinished, waitUntil: deadline });
    throw new JobSuspended(`waiting for ${unfinished.length} delegated job(s)`);
  }

  /**
   * Whether an archived child that did not complete runs again: one cancelled
   * because this job ended (and this job was retried since), or one that
   * failed when `retryFailed` allows it and this job already failed for it once.
   */
  private async restorable(child: Job, key: string, options: DelegateOptions): Promise<boolean> {
    const parent = JSON.stringify(this.entry.job.id);
    if (child.status === "cancelled") return child.errorMessage?.startsWith(`cancelled because job ${parent} `) === true;
    if (child.status !== "failed" || options.retryFailed !== true) return false;
    // The failure is reported once (this attempt fails, retryably); the next attempt retries the child.
    const marker = `retry:${key}:${child.attempts}`;
    if ((await this.storedSteps()).has(marker)) return true;
    await this.save(marker, null, null);
    return false;
  }

  private endedError(child: Job, key: string, options: DelegateOptions, timeout: number | undefined): DelegatedJobError {
    const id = JSON.stringify(child.id);
    if (child.status === "cancelled" && child.errorMessage === stoppedWaitingReason(this.entry.job.id)) {
      return new DelegatedJobError(child.id, "timeout", `delegated job ${id} did not finish within ${timeout ?? "its"} s; it was cancelled`, false);
    }
    const why = child.errorMessage ? `: ${child.errorMessage}` : "";
    if (child.status === "failed") return new DelegatedJobError(child.id, "failed", `delegated job ${id} (key ${JSON.stringify(key)}) failed${why}`, options.retryFailed === true);
    return new DelegatedJobError(child.id, "cancelled", `delegated job ${id} (key ${JSON.stringify(key)}) was cancelled${why}`, false);
  }

  /** `ctx.step`: the stored result if this step returned on an earlier attempt, else runs it and stores what it returns. */
  async step<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    const key = this.occurrence(checkName(name, "ctx.step"));
    if (typeof fn !== "function") throw new NonRetryableError(`ctx.step(${JSON.stringify(name)}): give a function to run`);
    const stored = (await this.storedSteps()).get(key);
    if (stored) return (stored.result ?? null) as T;
    const value = stepJson(await fn(), key);
    return (await this.save(key, value, null)).result as T;
  }

  /** `ctx.sleep`: parks the job until `ms` after the first time this sleep was reached; returns at once after that. */
  async sleep(name: string, ms: number): Promise<void> {
    const key = this.occurrence(`sleep:${checkName(name, "ctx.sleep")}`);
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0 || ms > MAX_SLEEP_MS) {
      throw new NonRetryableError(`ctx.sleep(${JSON.stringify(name)}): ms must be a number of milliseconds from 0 to ${MAX_SLEEP_MS} (got ${String(ms)})`);
    }
    const stored = (await this.storedSteps()).get(key) ?? (await this.save(key, null, new Date(this.deps.clock.now() + ms)));
    const wakeAt = stored.wake_at?.getTime() ?? 0;
    if (wakeAt <= this.deps.clock.now()) return;
    this.suspend({ runAt: wakeAt });
    throw new JobSuspended(`sleeping until ${new Date(wakeAt).toISOString()}`);
  }

  private suspend(s: { children?: string[]; runAt?: number; waitUntil?: number | null }): void {
    const current = (this.suspended ??= { children: new Set(), runAt: null, waitUntil: null });
    for (const id of s.children ?? []) current.children.add(id);
    if (s.runAt !== undefined) current.runAt = Math.max(current.runAt ?? 0, s.runAt);
    if (s.waitUntil !== undefined && s.waitUntil !== null) current.waitUntil = Math.min(current.waitUntil ?? Number.POSITIVE_INFINITY, s.waitUntil);
  }

  private keyOf(given: unknown): string {
    if (given === undefined || given === null) {
      this.unkeyed++;
      return `#${this.unkeyed}`;
    }
    if (typeof given !== "string" || given.trim() === "" || given.length > LIMITS.idLength || given.startsWith("#")) {
      throw new NonRetryableError(`ctx.delegate: key must be a non-empty string of at most ${LIMITS.idLength} characters not starting with "#" (got ${JSON.stringify(given)})`);
    }
    if (this.keys.has(given)) throw new NonRetryableError(`ctx.delegate: key ${JSON.stringify(given)} is used twice in one run`);
    this.keys.add(given);
    return given;
  }

  /** `name`, or `name#2`, `name#3`, ... when the run reaches a step of the same name again. */
  private occurrence(name: string): string {
    const n = (this.occurrences.get(name) ?? 0) + 1;
    this.occurrences.set(name, n);
    return n === 1 ? name : `${name}#${n}`;
  }

  private storedSteps(): Promise<Map<string, StepRow>> {
    this.stored ??= this.deps.store.steps(this.entry.job.id).then((rows) => new Map(rows.map((r) => [r.name, r])));
    return this.stored;
  }

  private async save(name: string, result: JsonValue | null, wakeAt: Date | null): Promise<StepRow> {
    const { job, leaseToken } = this.entry;
    const outcome = await this.deps.store.saveStep({ jobId: job.id, leaseToken, workerId: this.deps.workerId, name, attempt: job.attempts, result, wakeAt });
    if (outcome === "lost") throw new Error(`the job's lease was lost; step ${JSON.stringify(name)} was not stored`);
    if (outcome === "exists") {
      this.stored = undefined;
      const row = (await this.storedSteps()).get(name);
      if (row) return row;
    }
    const row: StepRow = { name, attempt: job.attempts, result, wake_at: wakeAt, created_at: new Date(this.deps.clock.now()) };
    (await this.storedSteps()).set(name, row);
    return row;
  }
}

function checkOptions(options: DelegateOptions, single: boolean): number | undefined {
  if (typeof options !== "object" || options === null) throw new NonRetryableError("ctx.delegate: options must be an object");
  if (!single && options.key !== undefined) throw new NonRetryableError("ctx.delegateAll: give each spec its own key (spec.key), not options.key");
  const timeout = options.timeoutSeconds;
  if (timeout !== undefined && (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout <= 0)) {
    throw new NonRetryableError(`ctx.delegate: timeoutSeconds must be a positive number (got ${String(timeout)})`);
  }
  return timeout;
}

function withoutKey(spec: DelegateSpec): CreateJobInput {
  if (typeof spec !== "object" || spec === null) return spec;
  const rest: Partial<DelegateSpec> = { ...spec };
  delete rest.key;
  return rest as CreateJobInput;
}

function checkName(name: unknown, what: string): string {
  if (typeof name !== "string" || name.trim() === "" || name.length > 200 || RESERVED.test(name) || name.includes("#")) {
    throw new NonRetryableError(`${what}: the name must be a non-empty string of at most 200 characters, without "#" and not starting with "sleep:" or "retry:" (got ${JSON.stringify(name)})`);
  }
  return name;
}

/** A step's return value as stored JSON (undefined as null); one JSON cannot hold, or over the payload limit, fails the job for good. */
function stepJson(value: unknown, name: string): JsonValue | null {
  if (value === undefined || value === null) return null;
  try {
    const json = storableJson(value, `step ${JSON.stringify(name)}`, "lenient");
    const bytes = Buffer.byteLength(JSON.stringify(json));
    if (bytes > LIMITS.payloadBytes) throw new ValidationError(`step ${JSON.stringify(name)}`, `result is ${bytes} bytes; at most ${LIMITS.payloadBytes}`);
    return json;
  } catch (error) {
    if (error instanceof ValidationError) throw new NonRetryableError(`the result of ${error.message}`);
    throw error;
  }
}
