import type { HandoffRequest } from "../db/sql/handoff";
import type { WorkerFilter } from "../db/sql/limits";
import { leaseTokens, type JobRow } from "../db/sql/rows";
import type { JobStore } from "../db/store";
import type { Logger } from "../core/logger";

/**
 * A worker's side of the handoff (`JobStore.complete` with a request): what
 * its completion writes ask for, the jobs it hands back, and the jobs that a
 * write which failed may have leased to it.
 *
 * A write can commit and still fail for the worker (the connection dropped
 * before the reply arrived). The jobs it leased would then be `running`
 * under this worker's name but unknown to it: no heartbeat renews them, and
 * at lease expiry they would be rescued at the cost of a retry they never
 * used, or fail if they had none. So the tokens of every write that failed
 * are kept, and {@link Handoffs.releaseUnknown} (run by heartbeats and on
 * stop) returns whatever they leased to pending.
 */
export class Handoffs {
  /** Lease-token sets of handoff writes that failed: they may have committed. */
  private unknown: Array<readonly string[]> = [];
  /** Hand-backs in flight (awaited on stop). */
  private readonly handingBack = new Set<Promise<void>>();

  constructor(
    private readonly store: JobStore,
    private readonly options: { workerId: string; leaseSeconds: number; filter: WorkerFilter; logger: Logger },
  ) {}

  /** The request for a write of `batchSize` completions, with `room` jobs' worth of space in the worker; none if no room. */
  request(batchSize: number, room: number): HandoffRequest | undefined {
    const n = Math.min(batchSize, room);
    if (n <= 0) return undefined;
    return { workerId: this.options.workerId, tokens: leaseTokens(n), leaseSeconds: this.options.leaseSeconds, filter: this.options.filter };
  }

  /** A write that carried `request` failed: it may have committed. */
  failed(request: HandoffRequest): void {
    this.unknown.push(request.tokens);
  }

  /** Returns to pending, without using a retry, what failed writes leased to this worker. Throws if the database cannot be reached (try again later). */
  async releaseUnknown(): Promise<void> {
    while (this.unknown.length > 0) {
      const released = await this.store.releaseLeasedWith(this.options.workerId, this.unknown[0], "its worker never learned that a completion had handed it over");
      if (released.length > 0) this.options.logger.warn("returned jobs a completion handed over, whose reply was lost, to pending", { jobIds: released });
      this.unknown.shift();
    }
  }

  /** Hands jobs that will not start here back to pending (`release` does it and logs); awaited by {@link Handoffs.settled}. */
  handBack(rows: JobRow[], release: (rows: JobRow[]) => Promise<void>): void {
    const done: Promise<void> = release(rows).finally(() => this.handingBack.delete(done));
    this.handingBack.add(done);
  }

  /** Resolves once every hand-back has been written (or given up). */
  async settled(): Promise<void> {
    await Promise.all([...this.handingBack]);
  }
}
