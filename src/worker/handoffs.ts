import type { HandoffRequest } from "../db/sql/handoff";
import type { WorkerFilter } from "../db/sql/limits";
import { leaseTokens } from "../db/sql/rows";
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
 * are kept, and {@link Handoffs.releaseLost} (run by heartbeats and on
 * stop) returns whatever they leased to pending.
 */
export class Handoffs {
  /** Lease-token sets of handoff writes that failed: they may have committed. */
  private unknown: Array<readonly string[]> = [];
  /** Releases in flight (awaited on stop). */
  private readonly releasing = new Set<Promise<void>>();

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
  async releaseLost(): Promise<void> {
    while (this.unknown.length > 0) {
      const released = await this.store.releaseLeasedWith(this.options.workerId, this.unknown[0], "its worker never learned that a completion had handed it over");
      if (released.length > 0) this.options.logger.warn("returned jobs a completion handed over, whose reply was lost, to pending", { jobIds: released });
      this.unknown.shift();
    }
  }

  /** Keeps track of a release of jobs that will not start here (it must not reject); awaited by {@link Handoffs.settled}. */
  settle(release: Promise<void>): void {
    const done: Promise<void> = release.finally(() => this.releasing.delete(done));
    this.releasing.add(done);
  }

  /** Resolves once every release tracked so far has been written (or given up). */
  async settled(): Promise<void> {
    await Promise.all([...this.releasing]);
  }
}
