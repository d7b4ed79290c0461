import type { JobRow } from "../db/sql/rows";

/** A job claimed ahead of a free slot. */
interface HeldJob {
  readonly row: JobRow;
  /** When the claim's reply came back (clock milliseconds). */
  readonly claimedAt: number;
  /** The lease runs at least until then (clock milliseconds); each renewal moves it on. */
  leaseUntil: number;
}

/**
 * The jobs a worker holds claimed ahead of its free slots (`prefetch`), in
 * claim order. A held job is `running` in the database under the worker's
 * lease: it starts when a slot frees, goes back to pending when the worker
 * stops, and is renewed by heartbeats like a running job.
 */
export class HeldJobs {
  private jobs: HeldJob[] = [];
  private readonly waited = new WeakMap<JobRow, number>();

  /**
   * @param options.marginMs - A held job with less lease left than this is
   *   dropped instead of started: another worker may already have rescued it.
   * @param options.onDropped - Told of each job dropped that way.
   */
  constructor(private readonly options: { marginMs: number; onDropped: (row: JobRow) => void }) {}

  /** How many jobs are held. */
  get size(): number {
    return this.jobs.length;
  }

  /** Holds jobs whose claim came back at `claimedAt` and whose lease runs at least until `leaseUntil`. */
  add(rows: readonly JobRow[], claimedAt: number, leaseUntil: number): void {
    for (const row of rows) this.jobs.push({ row, claimedAt, leaseUntil });
  }

  /** Takes up to `n` held jobs to start, in claim order, dropping those whose lease may have run out. */
  take(n: number, now: number): JobRow[] {
    const taken: JobRow[] = [];
    while (taken.length < n && this.jobs.length > 0) {
      const row = this.takeAt(0, now);
      if (row) taken.push(row);
    }
    return taken;
  }

  /** How long a job waited here before it was taken to start, if it was held. */
  waitedMs(row: JobRow): number | undefined {
    return this.waited.get(row);
  }

  /** Removes the `n` held jobs added last and returns their rows. */
  removeNewest(n: number): JobRow[] {
    return n <= 0 ? [] : this.jobs.splice(Math.max(0, this.jobs.length - n)).map((h) => h.row);
  }

  /** Removes the held jobs of these queues and returns their rows (the queues were paused). */
  removeQueues(queues: ReadonlySet<string>): JobRow[] {
    const out = this.jobs.filter((h) => queues.has(h.row.queue)).map((h) => h.row);
    this.jobs = this.jobs.filter((h) => !queues.has(h.row.queue));
    return out;
  }

  /** Removes every held job and returns their rows (the worker is stopping). */
  removeAll(): JobRow[] {
    return this.jobs.splice(0).map((h) => h.row);
  }

  /** Drops the held jobs with these ids (they were cancelled). */
  removeIds(ids: ReadonlySet<unknown>): void {
    this.jobs = this.jobs.filter((h) => !ids.has(h.row.id));
  }

  /**
   * The lease tokens of the jobs held now, for a renewal, and `renewed` to
   * apply its answer to exactly those jobs (claims that land meanwhile are not
   * touched): the leases still held move on, and the jobs whose lease is gone
   * (cancelled, reclaimed) are dropped before they start.
   */
  leases(): { tokens: string[]; renewed(stillHeld: ReadonlySet<string>, renewedAt: number, leaseMs: number): void } {
    const asked = [...this.jobs];
    return {
      tokens: asked.map((h) => h.row.lease_token as string),
      renewed: (stillHeld, renewedAt, leaseMs) => {
        const lost = new Set<HeldJob>();
        for (const h of asked) {
          if (stillHeld.has(h.row.lease_token as string)) h.leaseUntil = renewedAt + leaseMs;
          else lost.add(h);
        }
        if (lost.size > 0) this.jobs = this.jobs.filter((h) => !lost.has(h));
      },
    };
  }

  /** Removes `jobs[index]`; returns its row, with the time it waited noted, unless its lease may have run out. */
  private takeAt(index: number, now: number): JobRow | undefined {
    const [h] = this.jobs.splice(index, 1);
    if (h.leaseUntil - now <= this.options.marginMs) {
      this.options.onDropped(h.row);
      return undefined;
    }
    this.waited.set(h.row, Math.max(0, now - h.claimedAt));
    return h.row;
  }
}
