/**
 * An attempt's abort switch (cancelled, timed out, shutdown, lease lost).
 * The `AbortSignal` an executor sees is made only when something asks for
 * it: Node takes microseconds to make an `AbortController`, as much as the
 * rest of a no-op job's start, and most executors never read the signal.
 * The worker's own wait on the executor ({@link AttemptAbort.race}) needs no
 * signal at all.
 */
export class AttemptAbort {
  private controller: AbortController | undefined;
  private why: Error | undefined;
  private readonly listeners = new Set<(reason: Error) => void>();

  /** Whether the attempt was aborted. */
  get aborted(): boolean {
    return this.why !== undefined;
  }

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
    const listeners = [...this.listeners];
    this.listeners.clear();
    for (const listener of listeners) listener(reason);
  }

  /** Resolves with the promise, or rejects with the abort's reason as soon as the attempt is aborted. */
  race<T>(promise: Promise<T>): Promise<T> {
    if (this.why) return Promise.reject(this.why);
    return new Promise<T>((resolve, reject) => {
      const onAbort = (reason: Error) => reject(reason);
      this.listeners.add(onAbort);
      promise.then(
        (value) => {
          this.listeners.delete(onAbort);
          resolve(value);
        },
        (error: unknown) => {
          this.listeners.delete(onAbort);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }
}
