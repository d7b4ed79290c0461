import type { JobStore } from "../db/store";
import type { Completion } from "../db/sql/finish";
import type { HandoffRequest } from "../db/sql/handoff";
import type { JobRow } from "../db/sql/rows";
import type { Logger } from "../core/logger";
import { backoffMs, sleep, type Clock } from "../core/clock";

interface Pending {
  completion: Completion;
  resolve: (accepted: boolean) => void;
}

/**
 * Batches completions: those that finish in the same turn of the event loop
 * (a claimed batch of quick jobs) are written together on the next turn; those
 * that finish while a write is in flight go together in the next one. Under
 * load this turns N completions into a handful of transactions at no added
 * latency (a turn is well under a millisecond).
 * A write that fails (database restarting) is retried with backoff until
 * `giveUpMs`; after that the jobs are left to lease expiry (and run again).
 */
export class CompletionBatcher {
  private queue: Pending[] = [];
  private inFlight = 0;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly store: JobStore,
    private readonly options: {
      clock: Clock;
      logger: Logger;
      giveUpMs: number;
      random: () => number;
      /** Dependents became ready for any worker. */
      onReady: (count: number) => void;
      /**
       * The worker's offer to take the dependents a batch of this size makes
       * ready (see `JobStore.complete`), asked before each write; none when it
       * returns undefined.
       */
      handoff?: (batchSize: number) => HandoffRequest | undefined;
      /** Dependents leased to the worker by a write that asked at `requestedAt` (clock milliseconds). */
      onHanded?: (rows: JobRow[], requestedAt: number) => void;
      /** A write that carried this handoff request failed: it may still have committed. */
      onHandoffFailed?: (request: HandoffRequest) => void;
    },
  ) {}

  /** Queues a completion; resolves with whether the job's lease was still held. */
  add(completion: Completion): Promise<boolean> {
    return new Promise((resolve) => {
      this.queue.push({ completion, resolve });
      this.startFlush();
    });
  }

  private startFlush(): void {
    if (this.flushing) return;
    this.flushing = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.flushAll())
      .finally(() => {
        this.flushing = undefined;
        // A completion added after flushAll's last look at the queue, but
        // before this ran, found a flush still set: write it now.
        if (this.queue.length > 0) this.startFlush();
      });
  }

  /** Completions queued or being written. */
  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  /** Resolves once everything queued so far is written (or given up). */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flushAll(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, 1000);
      this.inFlight = batch.length;
      const accepted = await this.write(batch.map((p) => p.completion));
      this.inFlight = 0;
      for (const p of batch) p.resolve(accepted.has(p.completion.id));
    }
  }

  private async write(completions: Completion[]): Promise<Set<string>> {
    const started = this.options.clock.now();
    for (let attempt = 0; ; attempt++) {
      const requestedAt = this.options.clock.now();
      const handoff = this.options.handoff?.(completions.length);
      try {
        const { accepted, ready, handed } = await this.store.complete(completions, handoff);
        if (handed.length > 0) this.options.onHanded?.(handed, requestedAt);
        if (ready > 0) this.options.onReady(ready);
        return new Set(accepted);
      } catch (error) {
        if (handoff) this.options.onHandoffFailed?.(handoff);
        if (this.options.clock.now() - started > this.options.giveUpMs) {
          this.options.logger.error("giving up recording completions; the jobs will run again after their leases expire", {
            error: String(error),
            jobIds: completions.map((c) => c.id),
          });
          return new Set();
        }
        this.options.logger.warn("recording completions failed; retrying", { error: String(error), attempt });
        await sleep(this.options.clock, backoffMs(attempt, 100, 5000, this.options.random));
      }
    }
  }
}
