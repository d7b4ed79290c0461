/**
 * An attempt's abort switch (cancelled, timed out, shutdown, lease lost).
 * The `AbortSignal` an executor sees is made only when something asks for
 * it: most executors never read it, and making one is a noticeable share of
 * a no-op job's cost (docs/BENCHMARKS.md).
 * The worker's own wait on the executor ({@link AttemptAbort.race}) needs no
 * signal at all.
 */
export class AttemptAbort {
  private controller: AbortController | undefined;
  private why: Error | undefined;
  /** Rejects the worker's wait on the executor ({@link AttemptAbort.race}), while it waits. */
  private rejectRace: ((reason: Error) => void) | undefined;

  /** The signal handed to the executor: aborted already if the attempt was. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.why) this.controller.abort(this.why);
    }
    return this.controller.signal;
  }

  /** Aborts the attempt (the first reason wins). */
  abort(reason: Error): void {
    if (this.why) return;
    this.why = reason;
    this.controller?.abort(reason);
    const reject = this.rejectRace;
    this.rejectRace = undefined;
    reject?.(reason);
  }

  /**
   * Resolves with the promise, or rejects with the abort's reason as soon as
   * the attempt is aborted. One race per attempt: the worker's wait on its executor.
   */
  race<T>(promise: Promise<T>): Promise<T> {
    if (this.why) return Promise.reject(this.why);
    return new Promise<T>((resolve, reject) => {
      this.rejectRace = reject;
      promise.then(
        (value) => {
          this.rejectRace = undefined;
          resolve(value);
        },
        (error: unknown) => {
          this.rejectRace = undefined;
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }
}
