import { checkText, LIMITS } from "../core/checks";
import { ValidationError, WorkerNotFoundError } from "../core/errors";
import { pauseQueue, queueRows, requestOfWorker, resumeQueue, type WorkerRequest } from "../db/sql/control";
import { workerRows } from "../db/sql/server";
import type { JobsContext } from "./context";

/** A queue, as `listQueues` shows it. */
export interface QueueInfo {
  name: string;
  /** Its jobs are claimed by no worker until it is resumed. */
  paused: boolean;
  pausedAt: Date | null;
  /** Ready to run now. */
  ready: number;
  running: number;
  /** Pending but not ready: waiting on dependencies, children or their run time. */
  waiting: number;
  /** Seconds the oldest ready job has waited since it became ready; null with none ready. */
  oldestReadySeconds: number | null;
}

/** A registered worker, as `listWorkers` shows it. */
export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  /** Jobs it runs at once. */
  concurrency: number;
  /** running (claims), quiet (claims nothing), draining (stops when idle) or stopping. */
  status: string;
  queues: string[] | null;
  tags: string[];
  /** Tenants it serves; null: every tenant. */
  tenants: string[] | null;
  /** What an operator asked of it last (active, quiet, drain), and jobs at once (null: as started). */
  requestedState: string | null;
  requestedConcurrency: number | null;
  startedAt: Date;
  lastHeartbeatAt: Date;
  /** Jobs it runs now (held ones included). */
  running: number;
}

/**
 * Operator controls (see the README's "Operator controls"): pausing queues,
 * and asking workers to go quiet, drain, resume or run another number of
 * jobs at once. Each change reaches the workers at its commit (NOTIFY on the
 * schema's `workers_control` channel); a worker also reads its requests back
 * at every heartbeat.
 */
export class ControlService {
  constructor(private readonly ctx: JobsContext) {}

  async pauseQueue(name: string): Promise<QueueInfo> {
    await pauseQueue(this.ctx.db, checkText(name, "name", LIMITS.keyLength, false));
    return this.queue(name);
  }

  async resumeQueue(name: string): Promise<QueueInfo> {
    await resumeQueue(this.ctx.db, checkText(name, "name", LIMITS.keyLength, false));
    return this.queue(name);
  }

  async listQueues(): Promise<QueueInfo[]> {
    return (await queueRows(this.ctx.db)).map((r) => ({ name: r.name, paused: r.paused, pausedAt: r.paused_at, ready: r.ready, running: r.running, waiting: r.waiting, oldestReadySeconds: r.oldest_ready_seconds }));
  }

  async listWorkers(): Promise<WorkerInfo[]> {
    return (await workerRows(this.ctx.db)).map((w) => ({
      id: w.id,
      host: w.host,
      pid: w.pid,
      concurrency: w.concurrency,
      status: w.status,
      queues: w.queues,
      tags: w.tags,
      tenants: w.tenants,
      requestedState: w.requested_state,
      requestedConcurrency: w.requested_concurrency,
      startedAt: w.started_at,
      lastHeartbeatAt: w.last_heartbeat_at,
      running: w.running,
    }));
  }

  /** Records a request for a worker and tells it. @throws {@link WorkerNotFoundError} when no such worker runs. */
  async requestOfWorker(id: string, request: { state?: WorkerRequest; concurrency?: number }): Promise<WorkerInfo> {
    const workerId = checkText(id, "id", LIMITS.idLength, false);
    if (request.concurrency !== undefined && (!Number.isInteger(request.concurrency) || request.concurrency < 1 || request.concurrency > 10_000)) {
      throw new ValidationError("maxConcurrentJobs", `must be an integer from 1 to 10000 (got ${String(request.concurrency)})`);
    }
    if (!(await requestOfWorker(this.ctx.db, workerId, request))) throw new WorkerNotFoundError(workerId);
    return (await this.listWorkers()).find((w) => w.id === workerId) as WorkerInfo;
  }

  private async queue(name: string): Promise<QueueInfo> {
    return (await this.listQueues()).find((q) => q.name === name) ?? { name, paused: false, pausedAt: null, ready: 0, running: 0, waiting: 0, oldestReadySeconds: null };
  }
}
