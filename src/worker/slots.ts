import type { JobRow } from "../db/sql/rows";
import { HeldJobs } from "./held";
import type { RunningJob } from "./runner";
import type { PrefetchLimit } from "./prefetch";

/** What a claim round may ask for. */
export interface ClaimBudget {
  /** Slots a claim may fill now. */
  free: number;
  /** Completions waiting to be written took slots out of this round. */
  throttled: boolean;
}

/**
 * The worker's count of its jobs, in one place: running (executor started),
 * held (claimed ahead of a free slot, `prefetch`, or handed over by a
 * completion), and completing (executor returned, completion not yet
 * written). It answers how many to claim now, how many a completion may
 * hand over, and whether a claimed job's lease still allows starting it.
 *
 * Every claimed job passes through the held jobs before it starts, so one
 * rule decides: a job starts only while its lease, judged by the clock at
 * that moment, outlasts the margin until the next renewal. A worker paused
 * (SIGSTOP, a long GC, a lost network) after claiming finds on resuming that
 * the leases it was granted have run out and starts none of those jobs:
 * another worker may already run them.
 */
export class SlotLedger {
  readonly running = new Map<string, RunningJob>();
  private readonly held: HeldJobs;

  constructor(
    private readonly limits: { maxConcurrentJobs: number; prefetch: PrefetchLimit },
    lease: { marginMs: number; onDropped: (row: JobRow) => void },
  ) {
    this.held = new HeldJobs(lease);
  }

  /** Jobs held, not started. */
  get heldCount(): number {
    return this.held.size;
  }

  /**
   * Slots a claim may fill: a slot is free once its executor has returned,
   * but completions still being written may run ahead by one slot each (or
   * `prefetch`, if larger), no further.
   */
  budget(completing: number): ClaimBudget {
    const backlog = Math.max(0, completing - Math.max(this.limits.maxConcurrentJobs, this.limits.prefetch.value));
    return { free: this.limits.maxConcurrentJobs - this.running.size - backlog, throttled: backlog > 0 };
  }

  /** Jobs a completion may hand this worker: room for running plus held, less what runs and is held. */
  handoffRoom(): number {
    return this.limits.maxConcurrentJobs + this.limits.prefetch.value - this.running.size - this.held.size;
  }

  /**
   * How many to claim ahead of free slots: once at most a quarter of
   * `prefetch` is held, the rest of it (docs/BENCHMARKS.md: a half refilled
   * twice as often, and was slower); 0 otherwise.
   */
  refill(): number {
    const prefetch = this.limits.prefetch.value;
    if (prefetch === 0 || this.held.size > prefetch / 4) return 0;
    return prefetch - this.held.size;
  }

  /** Held jobs beyond `prefetch` while every slot runs a job: they should go back to pending for other workers. */
  surplus(): number {
    return this.running.size >= this.limits.maxConcurrentJobs ? Math.max(0, this.held.size - this.limits.prefetch.value) : 0;
  }

  /** Holds claimed jobs whose reply came back at `claimedAt` and whose lease runs at least until `leaseUntil` (clock milliseconds). */
  hold(rows: readonly JobRow[], claimedAt: number, leaseUntil: number): void {
    this.held.add(rows, claimedAt, leaseUntil);
  }

  /** Up to `n` held jobs to start now, in claim order; those whose lease may have run out are dropped. */
  take(n: number, now: number): JobRow[] {
    return n > 0 ? this.held.take(n, now) : [];
  }

  /** How long a job waited held before it was taken to start. */
  waitedMs(row: JobRow): number | undefined {
    return this.held.waitedMs(row);
  }

  /** Removes the `n` held jobs added last (the surplus). */
  removeNewest(n: number): JobRow[] {
    return this.held.removeNewest(n);
  }

  /** Removes every held job (the worker is stopping). */
  removeAllHeld(): JobRow[] {
    return this.held.removeAll();
  }

  /** Removes the held jobs of paused queues and returns their rows (to go back to pending). */
  removeHeldOfQueues(queues: ReadonlySet<string>): JobRow[] {
    return this.held.removeQueues(queues);
  }

  /** Changes the number of jobs run at once (an operator's request). */
  setConcurrency(n: number): void {
    this.limits.maxConcurrentJobs = n;
  }

  /** Jobs run at once. */
  get concurrency(): number {
    return this.limits.maxConcurrentJobs;
  }

  /** Drops held jobs that were cancelled. */
  dropHeld(ids: ReadonlySet<unknown>): void {
    this.held.removeIds(ids);
  }

  /** The held jobs' lease tokens for a renewal, and how to apply its answer (see `HeldJobs.leases`). */
  heldLeases(): ReturnType<HeldJobs["leases"]> {
    return this.held.leases();
  }
}
