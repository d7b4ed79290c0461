/**
 * How many jobs a worker holds claimed beyond its free slots (`prefetch`).
 * A number is fixed. `"auto"` (the default) follows the work: enough held
 * jobs to keep every slot busy while the next claim is in flight, which is
 * many for short jobs and none for long ones.
 */
export interface PrefetchLimit {
  /** The current limit. */
  readonly value: number;
  /** An executor ran for `ms` (from its start to its return). */
  ran(ms: number): void;
  /** A claim took `ms` from request to reply. */
  claimed(ms: number): void;
  /** The worker now runs `n` jobs at once. */
  resize(n: number): void;
}

/** A fixed `prefetch`. */
export function fixedPrefetch(value: number): PrefetchLimit {
  return { value, ran: () => undefined, claimed: () => undefined, resize: () => undefined };
}

/** Weight of the newest sample in the moving averages. */
const ALPHA = 0.1;

/**
 * `prefetch: "auto"`: the cap, `min(10 × maxConcurrentJobs, max(100, 2 ×
 * maxConcurrentJobs))` (docs/BENCHMARKS.md: 100 was the best fixed value for
 * no-op jobs at c=10 and c=50), while jobs take no longer than a claim; for
 * longer jobs the cap times claim time ÷ run time (moving averages of
 * both), so jobs that run a hundred claims long hold nothing and other
 * workers are not starved. None before the first job ends. When jobs get
 * longer the limit falls and the surplus goes back to pending (see
 * `SlotLedger.surplus`).
 */
export class AdaptivePrefetch implements PrefetchLimit {
  private runMs = Number.NaN;
  private claimMs = Number.NaN;
  private cap = 0;

  constructor(slots: number) {
    this.resize(slots);
  }

  resize(slots: number): void {
    this.cap = Math.min(10 * slots, Math.max(100, 2 * slots));
  }

  get value(): number {
    if (!Number.isFinite(this.runMs) || !Number.isFinite(this.claimMs)) return 0;
    return Math.floor(this.cap * Math.min(1, this.claimMs / Math.max(this.runMs, 0.001)));
  }

  ran(ms: number): void {
    this.runMs = average(this.runMs, ms);
  }

  claimed(ms: number): void {
    this.claimMs = average(this.claimMs, ms);
  }
}

function average(current: number, sample: number): number {
  if (!Number.isFinite(sample) || sample < 0) return current;
  return Number.isFinite(current) ? current + ALPHA * (sample - current) : sample;
}
