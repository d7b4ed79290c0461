import { sleep, type Clock } from "../core/clock";
import { withFields, type Logger } from "../core/logger";
import { dependencyId, type Job, type JsonValue } from "../core/types";
import { toJob, type JobRow } from "../db/sql/rows";
import { dependencyResults } from "../db/sql/workers";
import type { JobStore } from "../db/store";
import type { JobManager } from "../jobs/JobManager";
import { AttemptAbort } from "./abort";
import type { CompletionBatcher } from "./completer";
import { Workflow } from "./workflow";
import { runAttempt, type RunningJob } from "./runner";
import type { SlotLedger } from "./slots";
import type { Executor } from "./types";

/** What starting and running attempts needs from the worker. */
export interface AttemptsDeps {
  workerId: string;
  store: JobStore;
  ledger: SlotLedger;
  completer: CompletionBatcher;
  jobManager: JobManager;
  clock: Clock;
  logger: Logger;
  random: () => number;
  leaseSeconds: number;
  retryBackoff: { baseSeconds: number; maxSeconds: number };
  filter: { queues: string[] | null; tags: string[] };
  executors(): Executor[];
  /** A slot is free again (or a retry or rate-limit wait is over): claim. */
  wake(reset?: boolean): void;
  /** A completion was written. */
  completionWritten(): void;
  /** An executor ran for `ms` (for `prefetch: "auto"`). */
  ran(ms: number): void;
  /** The last running job ended. */
  idle(): void;
  events: {
    start(job: Job): void;
    complete(job: Job, result: JsonValue | null): void;
    fail(job: Job, error: string, outcome: "retried" | "failed" | "refused"): void;
    park(job: Job): void;
  };
}

/** Starts claimed jobs in free slots and runs each attempt to its end. */
export class Attempts {
  constructor(private readonly deps: AttemptsDeps) {}

  /** Starts claimed jobs; never more than the free slots were taken, so each starts at once. */
  async start(rows: JobRow[]): Promise<void> {
    for (const entry of await this.prepare(rows)) void this.run(entry);
  }

  /**
   * Registers claimed jobs as running, with their dependencies' results. A job
   * never starts without them: if they cannot be read (the database is
   * restarting), the jobs that need them go back to pending, without using a
   * retry, for a later claim.
   */
  private async prepare(claimed: JobRow[]): Promise<RunningJob[]> {
    const { rows, results } = await this.withDependencyResults(claimed);
    return rows.map((row) => {
      const job = toJob(row);
      // A job claimed ahead (prefetch) starts now, not when it was claimed: `ctx.job.startedAt` says so.
      const held = this.deps.ledger.waitedMs(row);
      if (held !== undefined && job.startedAt !== null) job.startedAt = new Date(job.startedAt.getTime() + held);
      const own: Record<string, JsonValue | null> = {};
      for (const id of job.dependencies.map(dependencyId)) own[id] = (results.get(id) ?? null) as JsonValue | null;
      const entry: RunningJob = new RunningJobState(job, row.lease_token as string, own, held);
      this.deps.ledger.running.set(job.id, entry);
      this.deps.events.start(job);
      return entry;
    });
  }

  /** The rows that can start (with their dependencies' results read, three tries) and those results. */
  private async withDependencyResults(rows: JobRow[]): Promise<{ rows: JobRow[]; results: Map<string, unknown> }> {
    const ids = [...new Set(rows.flatMap((r) => r.dependencies.map(dependencyId)))];
    if (ids.length === 0) return { rows, results: new Map() };
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return { rows, results: await dependencyResults(this.deps.store.db, ids) };
      } catch (error) {
        lastError = error;
        await sleep(this.deps.clock, 100 * (attempt + 1));
      }
    }
    const waiting = rows.filter((r) => r.dependencies.length > 0);
    this.deps.logger.warn("could not read dependency results; returning the jobs that need them to pending", { error: String(lastError), jobIds: waiting.map((r) => r.id) });
    await this.deps.store
      .release(waiting.map((r) => ({ id: r.id, leaseToken: r.lease_token as string })), "the worker could not read the dependencies' results", { started: false })
      .catch(() => undefined); // if even that fails, the leases expire and the jobs are rescued
    return { rows: rows.filter((r) => r.dependencies.length === 0), results: new Map() };
  }

  private async run(entry: RunningJob): Promise<void> {
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const { running } = this.deps.ledger;
      if (running.get(entry.job.id) === entry) running.delete(entry.job.id);
      if (running.size === 0) this.deps.idle();
      this.deps.wake();
    };
    try {
      await runAttempt(entry, {
        release,
        ran: (ms) => this.deps.ran(ms),
        workerId: this.deps.workerId,
        executors: this.deps.executors(),
        logger: this.deps.logger,
        clock: this.deps.clock,
        store: this.deps.store,
        completer: this.deps.completer,
        retryBackoff: this.deps.retryBackoff,
        random: this.deps.random,
        onComplete: (job, result) => this.deps.events.complete(job, result),
        onFail: (job, error, outcome, retryInMs) => {
          this.deps.events.fail(job, error, outcome);
          if (outcome === "retried") this.deps.clock.setTimeout(() => this.deps.wake(true), retryInMs + 5);
        },
        onRateLimited: (_job, retryInMs) => this.deps.clock.setTimeout(() => this.deps.wake(true), retryInMs + 5),
        onParked: (job) => this.deps.events.park(job),
        workflow: (entry) => new Workflow({ jobManager: this.deps.jobManager, store: this.deps.store, clock: this.deps.clock, logger: withFields(this.deps.logger, { jobId: entry.job.id }), workerId: this.deps.workerId }, entry),
      });
    } finally {
      if (released) this.deps.completionWritten();
      else release();
    }
  }
}

/** A claimed job while this worker runs it. */
class RunningJobState implements RunningJob {
  readonly abort = new AttemptAbort();
  phase: RunningJob["phase"] = "executing";
  constructor(
    readonly job: Job,
    readonly leaseToken: string,
    readonly dependencyResults: Record<string, JsonValue | null>,
    readonly heldMs?: number,
  ) {}

  abandon(reason: "shutdown" | "lease-lost"): void {
    if (this.phase !== "executing") return;
    this.phase = reason;
    this.abort.abort(new Error(reason === "shutdown" ? "the worker is shutting down" : "the job's lease was lost"));
  }
}
