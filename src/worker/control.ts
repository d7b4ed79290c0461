import type { Logger } from "../core/logger";
import { pausedQueues, workerRequests, type WorkerRequests } from "../db/sql/control";
import type { Sql } from "../db/database";
import type { WorkerStatus } from "../db/sql/workers";

/** What operator controls change in their worker. */
export interface ControlDeps {
  db: Sql;
  workerId: string;
  logger: Logger;
  /** Stop claiming (quiet) or start again; held jobs go back to pending when it stops. */
  setClaiming(on: boolean): void;
  /** Stop once idle (drain). */
  drain(): void;
  /** Jobs run at once now. */
  concurrency(): number;
  /** Run `n` jobs at once from now on. */
  setConcurrency(n: number): void;
  /** These queues are paused now: held jobs of theirs go back to pending. */
  queuesPaused(queues: ReadonlySet<string>): void;
  /** The worker's status changed: report it now (not at the next heartbeat). */
  report(): void;
}

/**
 * A worker's side of the operator controls: what it was asked (quiet, drain,
 * resume, a number of jobs at once), learnt from a `workers_control`
 * notification within moments, or from its heartbeat's reply when a
 * notification was lost; and the paused queues, whose held jobs it hands
 * back. The claims themselves never take a paused queue's jobs (see
 * `workerFilter`).
 */
export class WorkerControl {
  private current: WorkerStatus = "running";

  constructor(private readonly deps: ControlDeps) {}

  /** Running (claims), quiet (claims nothing) or draining (claims nothing, stops when idle). */
  get status(): WorkerStatus {
    return this.current;
  }

  /** Whether the worker may claim. */
  get claiming(): boolean {
    return this.current === "running";
  }

  /** A `workers_control` notification. */
  notified(payload: string): void {
    let message: { worker?: unknown; queue?: unknown; paused?: unknown };
    try {
      message = JSON.parse(payload) as typeof message;
    } catch {
      return;
    }
    if (message.worker === this.deps.workerId) void this.refresh();
    if (typeof message.queue === "string" && message.paused === true) void this.refreshPaused();
  }

  /** Reads this worker's requests and applies them (after a reconnect, say). */
  async refresh(): Promise<void> {
    try {
      const requests = await workerRequests(this.deps.db, this.deps.workerId);
      if (requests) this.apply(requests);
    } catch (error) {
      this.deps.logger.warn("reading operator requests failed; the next heartbeat reads them", { error: String(error) });
    }
  }

  /** Hands back the held jobs of every paused queue. */
  async refreshPaused(): Promise<void> {
    try {
      const paused = await pausedQueues(this.deps.db);
      if (paused.length > 0) this.deps.queuesPaused(new Set(paused));
    } catch (error) {
      this.deps.logger.warn("reading paused queues failed", { error: String(error) });
    }
  }

  /** Applies what operators asked (from a notification or a heartbeat's reply). */
  apply(requests: WorkerRequests): void {
    const wanted = requests.requested_concurrency;
    const now = this.deps.concurrency();
    if (wanted !== null && wanted !== now) {
      this.deps.logger.info("concurrency changed by an operator", { from: now, to: wanted });
      this.deps.setConcurrency(wanted);
      this.deps.report();
    }
    const next = requests.requested_state === "quiet" ? "quiet" : requests.requested_state === "drain" ? "draining" : requests.requested_state === "active" ? "running" : this.current;
    if (next === this.current || this.current === "stopping") return;
    if (this.current === "draining" && next !== "running") return;
    this.deps.logger.info(next === "running" ? "resumed by an operator" : next === "quiet" ? "quieted by an operator: claiming nothing" : "drained by an operator: finishing what runs, then stopping", {
      from: this.current,
    });
    this.current = next;
    this.deps.setClaiming(next === "running");
    this.deps.report();
    if (next === "draining") this.deps.drain();
  }

  /** The worker began to stop. */
  stopping(): void {
    this.current = "stopping";
  }
}
