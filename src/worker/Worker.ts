import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import os from "node:os";
import type pg from "pg";
import { systemClock, type Clock } from "../core/clock";
import { silentLogger, withFields, type Logger } from "../core/logger";
import type { Job, JsonValue } from "../core/types";
import { clientSettings } from "../db/client";
import { databaseFor } from "../db/database";
import type { JobRow } from "../db/sql/rows";
import { deregisterWorker, registerWorker, touchWorker, type WorkerRegistration } from "../db/sql/workers";
import { JobStore } from "../db/store";
import { JobManager } from "../jobs/JobManager";
import { Attempts } from "./attempts";
import { Claimer } from "./claimer";
import { CompletionBatcher } from "./completer";
import { AgentExecutor, QueryExecutor } from "./executors";
import { Fetcher } from "./fetcher";
import { Handoffs } from "./handoffs";
import { ReadyListener } from "./listener";
import { MaintenanceTimers, rescueExpiredLeases } from "./maintenance";
import { resolveWorkerOptions, type ResolvedWorkerOptions, type WorkerOptions } from "./options";
import { SlotLedger } from "./slots";
import type { Executor } from "./types";
import { AdaptivePrefetch, fixedPrefetch, type PrefetchLimit } from "./prefetch";
import { WorkerControl } from "./control";

/** Events a {@link Worker} emits. */
export interface WorkerEvents {
  "job:start": [job: Job];
  "job:complete": [job: Job, result: JsonValue | null];
  "job:fail": [job: Job, error: string, outcome: "retried" | "failed" | "refused"];
  /** The attempt ended parked: the job waits for its children or sleeps, without a slot. */
  "job:park": [job: Job];
  stopped: [];
}

/**
 * Claims ready jobs and runs them through executors, up to
 * `maxConcurrentJobs` at a time. Custom executors (`addExecutor`) are tried
 * first, then the built-in agent and query executors.
 *
 * Life cycle: `start()` registers the worker, starts listening for ready
 * jobs and returns; `stop()` stops claiming, lets running jobs finish for
 * `shutdownTimeout` seconds, then aborts the rest and returns them to pending
 * without using a retry. The parts: {@link SlotLedger} counts jobs,
 * {@link Fetcher} claims, {@link Attempts} runs, `CompletionBatcher` writes
 * outcomes, {@link Handoffs} takes dependents from completions.
 */
export class Worker extends EventEmitter<WorkerEvents> {
  /** This worker's id (in the `workers` table and in `locked_by`). */
  readonly workerId: string;
  private readonly options: ResolvedWorkerOptions;
  private readonly store: JobStore;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly custom: Executor[] = [];
  private readonly builtIn: Executor[];
  private readonly jobManager: JobManager;
  private readonly ledger: SlotLedger;
  private readonly prefetch: PrefetchLimit;
  private readonly completer: CompletionBatcher;
  private readonly handoffs: Handoffs;
  private readonly fetcher: Fetcher;
  private readonly attempts: Attempts;
  private readonly control: WorkerControl;
  private state: "new" | "running" | "stopping" | "stopped" = "new";
  private heartbeatTimer: unknown;
  /** The heartbeat in flight, if any: the stop waits for it, so that it cannot register the worker again. */
  private beat: Promise<void> = Promise.resolve();
  private listener: ReadyListener | undefined;
  private maintenanceTimers: MaintenanceTimers | undefined;
  private stopping: Promise<void> | undefined;
  private forceStop: (() => void) | undefined;
  private forceRequested = false;
  private idleWaiters: Array<() => void> = [];

  constructor(options: WorkerOptions) {
    super();
    this.options = resolveWorkerOptions(options);
    this.workerId = this.options.workerId ?? `${os.hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
    this.clock = this.options.clock ?? systemClock;
    this.logger = withFields(this.options.logger ?? silentLogger(), { workerId: this.workerId });
    this.store = new JobStore(databaseFor(this.options.prisma, this.options.schema));
    this.jobManager = new JobManager(this.options.prisma, { schema: this.store.db.schema.name, logger: this.logger, clock: this.clock, refreshStatistics: false });
    this.builtIn = [new AgentExecutor(this.options.agentRegistry), new QueryExecutor(this.options.queryEngine)];
    const filter = { queues: this.options.queues, tags: this.options.tags, tenants: this.options.tenants };
    this.handoffs = new Handoffs(this.store, { workerId: this.workerId, leaseSeconds: this.options.staleTimeout, filter, logger: this.logger });
    const prefetch = this.options.prefetch === "auto" ? new AdaptivePrefetch(this.options.maxConcurrentJobs) : fixedPrefetch(this.options.prefetch);
    this.prefetch = prefetch;
    this.ledger = new SlotLedger({ maxConcurrentJobs: this.options.maxConcurrentJobs, prefetch }, {
      marginMs: this.options.heartbeatInterval * 1000,
      onDropped: (row) => this.handoffs.settle(this.release([row], `worker ${this.workerId} held it past its lease (paused?) and did not start it`)),
    });
    this.completer = new CompletionBatcher(this.store, {
      clock: this.clock,
      logger: this.logger,
      giveUpMs: this.options.staleTimeout * 1000,
      random: this.options.random,
      onReady: () => this.fetcher.wake(),
      handoff: (batchSize) => this.fetcher.handoffRequest(batchSize),
      onHanded: (rows, requestedAt) => this.fetcher.takeHanded(rows, requestedAt),
      onHandoffFailed: (request) => this.handoffs.failed(request),
    });
    this.fetcher = this.createFetcher(filter);
    this.attempts = this.createAttempts(filter);
    this.control = this.createControl();
  }

  /** Operator controls: quiet, drain, resume, jobs at once, paused queues (see {@link WorkerControl}). */
  private createControl(): WorkerControl {
    const handBack = (rows: JobRow[], why: string) => void this.release(rows, `worker ${this.workerId} ${why}`);
    const deps = { db: this.store.db, workerId: this.workerId, logger: this.logger, report: () => void this.touch().catch(() => undefined) };
    return new WorkerControl({
      ...deps,
      setClaiming: (on) => (on ? this.fetcher.wake(true) : handBack(this.ledger.removeAllHeld(), "was quieted")),
      drain: () => void this.drained(),
      concurrency: () => this.ledger.concurrency,
      setConcurrency: (n) => (this.ledger.setConcurrency(n), this.prefetch.resize(n), this.fetcher.wake()),
      queuesPaused: (queues) => handBack(this.ledger.removeHeldOfQueues(queues), "holds no job of a paused queue"),
    });
  }

  /** Drain: once nothing runs, stops (unless an operator resumed it meanwhile). */
  private async drained(): Promise<void> {
    if (this.ledger.running.size > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    if (this.control.status === "draining") await this.stop();
  }

  /** Records the worker's status, and applies what operators asked of it (also each heartbeat). */
  private async touch(): Promise<void> {
    const requests = await touchWorker(this.store.db, this.registration(), this.state === "stopping" ? "stopping" : this.control.status);
    if (requests && this.state === "running") this.control.apply(requests);
  }

  private createFetcher(filter: { queues: string[] | null; tags: string[] }): Fetcher {
    return new Fetcher({
      ledger: this.ledger,
      claimer: new Claimer(this.store, filter),
      handoffs: this.handoffs,
      completing: () => this.completer.pending,
      clock: this.clock,
      logger: this.logger,
      random: this.options.random,
      workerId: this.workerId,
      leaseSeconds: this.options.staleTimeout,
      pollIntervalSeconds: this.options.pollInterval,
      running: () => this.state === "running" && this.control.claiming,
      start: (rows) => this.attempts.start(rows),
      release: (rows, reason) => this.release(rows, reason),
      claimed: (ms) => this.prefetch.claimed(ms),
    });
  }

  private createAttempts(filter: { queues: string[] | null; tags: string[] }): Attempts {
    return new Attempts({
      workerId: this.workerId,
      store: this.store,
      ledger: this.ledger,
      completer: this.completer,
      jobManager: this.jobManager,
      clock: this.clock,
      logger: this.logger,
      random: this.options.random,
      leaseSeconds: this.options.staleTimeout,
      retryBackoff: this.options.retryBackoff,
      filter,
      executors: () => [...this.custom, ...this.builtIn],
      wake: (reset) => this.fetcher.wake(reset),
      completionWritten: () => this.fetcher.completionWritten(),
      ran: (ms) => this.prefetch.ran(ms),
      idle: () => {
        for (const done of this.idleWaiters.splice(0)) done();
      },
      events: {
        start: (job) => this.emit("job:start", job),
        complete: (job, result) => this.emit("job:complete", job, result),
        fail: (job, error, outcome) => this.emit("job:fail", job, error, outcome),
        park: (job) => this.emit("job:park", job),
      },
    });
  }

  /** Adds an executor, tried before those added later and before the built-in ones. */
  addExecutor(executor: Executor): this {
    if (typeof executor?.canExecute !== "function" || typeof executor.execute !== "function") {
      throw new TypeError("addExecutor: an executor needs canExecute(job) and execute(job, ctx) functions");
    }
    this.custom.push(executor);
    return this;
  }

  /** Jobs this worker is running now. */
  get runningJobs(): Job[] {
    return [...this.ledger.running.values()].map((r) => r.job);
  }

  /** Registers the worker and starts claiming. Resolves once running. */
  async start(): Promise<void> {
    if (this.state !== "new") throw new Error(`worker ${this.workerId} was already started`);
    this.state = "running";
    await registerWorker(this.store.db, this.registration());
    await this.startListening();
    await this.control.refresh(); // a request made before the listener listened
    this.scheduleHeartbeat();
    if (this.options.maintenance) {
      this.maintenanceTimers = new MaintenanceTimers({
        workerId: this.workerId,
        db: this.store.db,
        jobManager: this.jobManager,
        clock: this.clock,
        logger: this.logger,
        historyRetentionDays: this.options.historyRetentionDays,
        cleanupIntervalHours: this.options.cleanupIntervalHours,
      });
      this.maintenanceTimers.start();
    }
    this.logger.info("worker started", { concurrency: this.options.maxConcurrentJobs, executors: this.executorNames() });
    this.fetcher.wake(true);
  }

  private async startListening(): Promise<void> {
    const config = this.options.directUrl ? { connectionString: this.options.directUrl } : clientSettings(this.options.prisma)?.listen;
    if (!config) {
      this.logger.warn("no direct connection for LISTEN (give directUrl); polling instead", { pollInterval: this.options.pollInterval });
      return;
    }
    const schema = this.store.db.schema;
    this.listener = new ReadyListener(
      config as pg.ClientConfig,
      {
        [schema.channel("jobs_ready")]: () => this.fetcher.wake(true),
        [schema.channel("jobs_cancelled")]: (payload) => this.abortCancelled(payload),
        [schema.channel("workers_control")]: (payload) => this.control.notified(payload),
      },
      {
        onReconnect: () => {
          this.fetcher.wake(true);
          void this.control.refresh();
        },
      },
      { clock: this.clock, logger: this.logger, random: this.options.random },
    );
    await this.listener.start();
  }

  /**
   * Stops the worker: no new claims; running jobs get `shutdownTimeout`
   * seconds to finish (none with `force`), then are aborted and returned to
   * pending without using a retry. Calling it again with `force` cuts the wait.
   */
  stop(options: { force?: boolean } = {}): Promise<void> {
    if (options.force) {
      this.forceRequested = true;
      this.forceStop?.();
    }
    if (this.stopping) return this.stopping;
    if (this.state === "new" || this.state === "stopped") {
      this.state = "stopped";
      return Promise.resolve();
    }
    this.stopping = this.shutdown(options.force === true);
    return this.stopping;
  }

  private async shutdown(force: boolean): Promise<void> {
    this.state = "stopping";
    this.control.stopping();
    this.maintenanceTimers?.stop();
    await this.listener?.stop();
    await touchWorker(this.store.db, this.registration(), "stopping").catch(() => undefined);
    await this.fetcher.stop(); // a claim in flight ends first (what it got is started or released)
    // Jobs held for later slots never start: back to pending for other workers at once.
    await this.release(this.ledger.removeAllHeld(), `worker ${this.workerId} shut down before the job started`);
    await this.finishRunning(force || this.forceRequested);
    await this.completer.drain();
    // Dependents handed over by completions in flight when the worker began to stop, and any
    // that a write whose reply was lost leased to it.
    await this.handoffs.settled();
    await this.handoffs.releaseLost().catch((error: unknown) => {
      this.logger.error("could not return jobs a lost completion reply handed over to pending; they run again after their leases expire", { error: String(error) });
    });
    this.state = "stopped";
    this.clock.clearTimeout(this.heartbeatTimer);
    await this.beat;
    await deregisterWorker(this.store.db, this.workerId).catch(() => undefined);
    this.logger.info("worker stopped");
    this.emit("stopped");
  }

  /** Waits for running jobs within the grace period, then aborts the rest and returns them to pending. */
  private async finishRunning(cut: boolean): Promise<void> {
    const { running } = this.ledger;
    if (running.size > 0) {
      this.logger.info("waiting for running jobs to finish", { running: running.size, graceSeconds: cut ? 0 : this.options.shutdownTimeout });
      await this.waitForIdle(cut ? 0 : this.options.shutdownTimeout * 1000);
    }
    const abandoned = [...running.values()].filter((r) => r.phase === "executing");
    for (const r of abandoned) r.abandon("shutdown");
    if (abandoned.length === 0) return;
    const leases = abandoned.map((r) => ({ id: r.job.id, leaseToken: r.leaseToken }));
    const released = await this.store.release(leases, `worker ${this.workerId} shut down before the job finished`).catch((error: unknown) => {
      this.logger.error("could not return jobs to pending; they run again after their leases expire", { error: String(error) });
      return [];
    });
    this.logger.warn("returned unfinished jobs to pending", { jobIds: released });
  }

  /** Returns claimed jobs that will not start here to pending, without using a retry; never throws. */
  private async release(rows: JobRow[], reason: string): Promise<void> {
    if (rows.length === 0) return;
    const leases = rows.map((r) => ({ id: r.id, leaseToken: r.lease_token as string }));
    try {
      const released = await this.store.release(leases, reason, { started: false });
      this.logger.info("returned claimed jobs that had not started to pending", { jobIds: released, reason });
    } catch (error) {
      this.logger.error("could not return claimed jobs to pending; they run again after their leases expire", { error: String(error) });
    }
  }

  private waitForIdle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.clock.clearTimeout(timer);
        this.forceStop = undefined;
        resolve();
      };
      const timer = this.clock.setTimeout(done, ms);
      this.forceStop = done;
      this.idleWaiters.push(done);
    });
  }

  /** Aborts the attempts of jobs that were just cancelled (their lease is gone; nothing they write is kept). */
  private abortCancelled(payload: string): void {
    let ids: unknown;
    try {
      ids = JSON.parse(payload);
    } catch {
      return;
    }
    if (!Array.isArray(ids)) return;
    this.ledger.dropHeld(new Set(ids));
    for (const id of ids) {
      const entry = typeof id === "string" ? this.ledger.running.get(id) : undefined;
      if (entry && entry.phase === "executing") {
        this.logger.info("job cancelled while running; aborting the attempt", { jobId: id });
        entry.abandon("lease-lost");
      }
    }
  }

  private scheduleHeartbeat(): void {
    const ms = this.options.heartbeatInterval * 1000 * (0.9 + 0.2 * this.options.random());
    this.heartbeatTimer = this.clock.setTimeout(() => {
      this.beat = this.heartbeat().finally(() => {
        if (this.state === "running" || this.state === "stopping") this.scheduleHeartbeat();
      });
    }, ms);
  }

  /** Renews leases, aborts jobs whose lease was lost, and rescues jobs of dead workers. */
  private async heartbeat(): Promise<void> {
    try {
      await this.touch();
      const executing = [...this.ledger.running.values()].filter((r) => r.phase === "executing");
      const waiting = this.ledger.heldLeases(); // the jobs held now: claims in flight may add more meanwhile
      const renewedAt = this.clock.now();
      const held = new Set(await this.store.renew(this.workerId, [...executing.map((r) => r.leaseToken), ...waiting.tokens], this.options.staleTimeout));
      // A held job whose lease is gone (cancelled, reclaimed) is dropped before it starts.
      waiting.renewed(held, renewedAt, this.options.staleTimeout * 1000);
      for (const r of executing) {
        if (held.has(r.leaseToken) || r.phase !== "executing") continue;
        this.logger.warn("lease lost (job reclaimed or cancelled); aborting the attempt", { jobId: r.job.id });
        r.abandon("lease-lost");
      }
      await this.handoffs.releaseLost();
      if (this.options.maintenance && this.state === "running") {
        const rescued = await rescueExpiredLeases(this.store, this.options.staleTimeout, this.logger);
        if (rescued > 0) this.fetcher.wake(true);
      }
    } catch (error) {
      this.logger.warn("heartbeat failed", { error: String(error) });
    }
  }

  private executorNames(): string[] {
    return [...this.custom, ...this.builtIn].map((e, i) => e.name ?? `custom-${i + 1}`);
  }

  private registration(): WorkerRegistration {
    const { queues, tags, tenants } = this.options;
    return { id: this.workerId, host: os.hostname(), pid: process.pid, concurrency: this.ledger.concurrency, executors: this.executorNames(), queues, tags, tenants };
  }
}
