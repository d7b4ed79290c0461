import type { Clock } from "../core/clock";
import type { Logger } from "../core/logger";
import type { HandoffRequest } from "../db/sql/handoff";
import type { JobRow } from "../db/sql/rows";
import type { Claimer } from "./claimer";
import type { Handoffs } from "./handoffs";
import type { SlotLedger } from "./slots";

/** What the fetch loop needs from its worker. */
export interface FetcherDeps {
  ledger: SlotLedger;
  claimer: Claimer;
  handoffs: Handoffs;
  /** Completions queued or being written. */
  completing(): number;
  clock: Clock;
  logger: Logger;
  random: () => number;
  workerId: string;
  leaseSeconds: number;
  pollIntervalSeconds: number;
  /** Whether the worker still takes work. */
  running(): boolean;
  /** Starts claimed jobs, each in a free slot. */
  start(rows: JobRow[]): Promise<void>;
  /** Returns claimed jobs that will not start here to pending, without using a retry. */
  release(rows: JobRow[], reason: string): Promise<void>;
  /** A claim took `ms` from request to reply (for `prefetch: "auto"`). */
  claimed(ms: number): void;
}

/**
 * The worker's fetch loop: claims for free slots (and ahead of them with
 * `prefetch`), starts what it got, and sleeps until a notification, a freed
 * slot, a rate-limit token or the next poll. One loop runs at a time; a wake
 * while it runs makes it go round once more.
 */
export class Fetcher {
  private fetching = false;
  private again = false;
  /** The last round claimed for fewer slots than were free: completions were backed up. */
  private throttled = false;
  /** Rounds in a row that found nothing: the poll backs off. */
  private idleRounds = 0;
  private round: Promise<void> = Promise.resolve();
  private pollTimer: unknown;
  private limitTimer: unknown;

  constructor(private readonly deps: FetcherDeps) {}

  /** Asks the loop to claim; `reset` ends the idle backoff (a notification arrived). */
  wake(reset = false): void {
    if (reset) this.idleRounds = 0;
    if (!this.deps.running()) return;
    if (this.fetching) {
      this.again = true;
      return;
    }
    this.fetching = true;
    // On the next turn of the event loop: jobs whose completions were written together free
    // their slots first, so one claim asks for all of those slots.
    this.round = new Promise<void>((resolve) => {
      setImmediate(() => {
        void this.loop().finally(() => {
          this.fetching = false;
          resolve();
          // A wake that arrived after the loop's last look would otherwise wait for the next poll.
          if (this.again) this.wake();
          else this.schedulePoll();
        });
      });
    });
  }

  /** A completion was written: if backed-up completions held claims back, claim again. */
  completionWritten(): void {
    if (this.throttled) this.wake();
  }

  /** Claims again once a rate-limited key has a token. */
  wakeAfter(ms: number): void {
    this.deps.clock.clearTimeout(this.limitTimer);
    this.limitTimer = this.deps.clock.setTimeout(() => this.wake(true), Math.max(1, Math.ceil(ms)));
  }

  /** Stops the timers; resolves once a round in flight has ended. */
  async stop(): Promise<void> {
    this.deps.clock.clearTimeout(this.pollTimer);
    this.deps.clock.clearTimeout(this.limitTimer);
    await this.round;
  }

  /**
   * What a completion batch may hand this worker (see `JobStore.complete`):
   * nothing under flow control (tokens, caps and tenants' shares are the
   * flow-control claim's) or while stopping.
   */
  handoffRequest(batchSize: number): HandoffRequest | undefined {
    if (!this.deps.running() || this.deps.claimer.usingFlowControl) return undefined;
    return this.deps.handoffs.request(batchSize, this.deps.ledger.handoffRoom());
  }

  /** Dependents a completion leased to this worker (asked at `requestedAt`): held, to start as slots free. */
  takeHanded(rows: JobRow[], requestedAt: number): void {
    if (!this.deps.running()) {
      this.deps.handoffs.settle(this.deps.release(rows, `handed to worker ${this.deps.workerId} while it was stopping`));
      return;
    }
    this.deps.ledger.hold(rows, this.deps.clock.now(), requestedAt + this.deps.leaseSeconds * 1000);
    this.wake();
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      if (!this.deps.running()) return;
      const budget = this.deps.ledger.budget(this.deps.completing());
      this.throttled = budget.throttled;
      const held = this.deps.ledger.take(budget.free, this.deps.clock.now());
      if (held.length > 0) await this.deps.start(held);
      this.releaseSurplus();
      const free = budget.free - held.length;
      if (free > 0 && !(await this.claim(free))) return;
      await this.refill();
    } while (this.again);
  }

  /** Claims for `free` slots and starts what it got; false when nothing more is ready (or the claim failed). */
  private async claim(free: number): Promise<boolean> {
    const { clock } = this.deps;
    const requestedAt = clock.now();
    let rows: JobRow[];
    try {
      const sent = performance.now();
      const round = await this.deps.claimer.claim(this.deps.workerId, free, this.deps.leaseSeconds);
      this.deps.claimed(performance.now() - sent);
      rows = round.rows;
      if (round.retryInMs !== undefined) this.wakeAfter(round.retryInMs);
    } catch (error) {
      this.idleRounds++;
      this.deps.logger.warn("claiming jobs failed", { error: String(error) });
      return false;
    }
    this.idleRounds = rows.length === 0 ? this.idleRounds + 1 : 0;
    if (!this.deps.running()) {
      await this.deps.release(rows, `worker ${this.deps.workerId} shut down before the job started`);
      return false;
    }
    // Through the held jobs: a job starts only while the lease this claim was granted still holds.
    this.deps.ledger.hold(rows, clock.now(), requestedAt + this.deps.leaseSeconds * 1000);
    const startable = this.deps.ledger.take(rows.length, clock.now());
    if (startable.length > 0) await this.deps.start(startable);
    if (rows.length < free) return false;
    this.again = true; // there may be more
    return true;
  }

  /** Claims plain jobs ahead of free slots (`prefetch`), when the buffer of held jobs runs low. */
  private async refill(): Promise<void> {
    const want = this.deps.ledger.refill();
    if (want === 0 || this.deps.claimer.usingFlowControl) return;
    const requestedAt = this.deps.clock.now();
    let rows: JobRow[];
    try {
      const sent = performance.now();
      rows = await this.deps.claimer.claimAhead(this.deps.workerId, want, this.deps.leaseSeconds);
      this.deps.claimed(performance.now() - sent);
    } catch (error) {
      this.deps.logger.warn("claiming jobs ahead failed", { error: String(error) });
      return;
    }
    if (!this.deps.running()) {
      await this.deps.release(rows, `worker ${this.deps.workerId} shut down before the job started`);
      return;
    }
    // The lease was set after the request left, so it ends no earlier than this deadline.
    this.deps.ledger.hold(rows, this.deps.clock.now(), requestedAt + this.deps.leaseSeconds * 1000);
    // Slots freed while this claim was in flight start from what it got.
    if (rows.length > 0 && this.deps.ledger.budget(this.deps.completing()).free > 0) this.again = true;
  }

  /** Every slot runs a job and more than `prefetch` are held: the surplus goes back to pending, announced, for other workers. */
  private releaseSurplus(): void {
    const surplus = this.deps.ledger.surplus();
    if (surplus === 0) return;
    const rows = this.deps.ledger.removeNewest(surplus);
    this.deps.handoffs.settle(this.deps.release(rows, `handed to worker ${this.deps.workerId} by a completion while its slots were busy`));
  }

  private schedulePoll(): void {
    if (!this.deps.running()) return;
    this.deps.clock.clearTimeout(this.pollTimer);
    const cap = this.deps.pollIntervalSeconds * 1000;
    const delay = this.idleRounds > 0 ? Math.min(cap, 100 * 2 ** Math.min(this.idleRounds - 1, 20)) : cap;
    this.pollTimer = this.deps.clock.setTimeout(() => this.wake(), Math.round(delay * (0.8 + 0.4 * this.deps.random())));
  }
}
