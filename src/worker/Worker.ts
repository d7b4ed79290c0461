import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import os from "node:os";
import type pg from "pg";
import { clientSettings } from "../db/client";
import { databaseFor } from "../db/database";
import { toJob, type JobRow } from "../db/sql/rows";
import { dependencyResults, deregisterWorker, registerWorker, touchWorker, type WorkerRegistration } from "../db/sql/workers";
import { JobStore } from "../db/store";
import type { HandoffRequest } from "../db/sql/handoff";
import { Handoffs } from "./handoffs";
import { dependencyId, type Job, type JsonValue } from "../core/types";
import { silentLogger, withFields, type Logger } from "../core/logger";
import { backoffMs, sleep, systemClock, type Clock } from "../core/clock";
import { AttemptAbort } from "./abort";
import { Claimer } from "./claimer";
import { HeldJobs } from "./held";
import { Delegation } from "./delegation";
import { JobManager } from "../jobs/JobManager";
import { CompletionBatcher } from "./completer";
import { AgentExecutor, QueryExecutor } from "./executors";
import { ReadyListener } from "./listener";
import { MaintenanceTimers, rescueExpiredLeases } from "./maintenance";
import { runAttempt, type RunningJob } from "./runner";
import { resolveWorkerOptions, type ResolvedWorkerOptions, type WorkerOptions } from "./options";
import type { Executor } from "./types";

/** Events a {@link Worker} emits. */
export interface WorkerEvents {
  "job:start": [job: Job];
  "job:complete": [job: Job, result: JsonValue | null];
  "job:fail": [job: Job, error: string, outcome: "retried" | "failed" | "refused"];
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
 * without using a retry.
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
  private readonly running = new Map<string, RunningJob>();
  /** Jobs claimed ahead of free slots (`prefetch`): running in the database, not started here yet. */
  private readonly held: HeldJobs;
  private readonly completer: CompletionBatcher;
  private state: "new" | "running" | "stopping" | "stopped" = "new";
  private fetching = false;
  private fetchRound: Promise<void> = Promise.resolve();
  private fetchAgain = false;
  /** The last claim round asked for fewer slots than were free because completions were backed up. */
  private heldBack = false;
  private idleRounds = 0;
  private pollTimer: unknown;
  private limitTimer: unknown;
  private readonly claimer: Claimer;
  private readonly jobManager: JobManager;
  private heartbeatTimer: unknown;
  private listener: ReadyListener | undefined;
  private maintenanceTimers: MaintenanceTimers | undefined;
  private stopping: Promise<void> | undefined;
  private forceStop: (() => void) | undefined;
  private forceRequested = false;
  private idleWaiters: Array<() => void> = [];
  /** Dependents that completions hand this worker (see ./handoffs.ts). */
  private readonly handoffs: Handoffs;

  constructor(options: WorkerOptions) {
    super();
    this.options = resolveWorkerOptions(options);
    this.workerId = this.options.workerId ?? `${os.hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
    this.clock = this.options.clock ?? systemClock;
    this.logger = withFields(this.options.logger ?? silentLogger(), { workerId: this.workerId });
    this.store = new JobStore(databaseFor(this.options.prisma, this.options.schema));
    this.jobManager = new JobManager(this.options.prisma, { schema: this.store.db.schema.name, logger: this.logger, refreshStatistics: false });
    this.builtIn = [new AgentExecutor(this.options.agentRegistry), new QueryExecutor(this.options.queryEngine)];
    this.held = new HeldJobs({
      marginMs: this.options.heartbeatInterval * 1000,
      onDropped: (row) => this.logger.warn("dropping a job held too long without a lease renewal; it runs again after its lease expires", { jobId: row.id }),
    });
    this.claimer = new Claimer(this.store, { queues: this.options.queues, tags: this.options.tags });
    this.completer = new CompletionBatcher(this.store, {
      clock: this.clock,
      logger: this.logger,
      giveUpMs: this.options.staleTimeout * 1000,
      random: this.options.random,
      onReady: () => this.wake(),
      handoff: (batchSize) => this.handoffRequest(batchSize),
      onHanded: (rows, requestedAt) => this.takeHanded(rows, requestedAt),
      onHandoffFailed: (request) => this.handoffs.failed(request),
    });
    this.handoffs = new Handoffs(this.store, {
      workerId: this.workerId,
      leaseSeconds: this.options.staleTimeout,
      filter: { queues: this.options.queues, tags: this.options.tags },
      logger: this.logger,
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
    return [...this.running.values()].map((r) => r.job);
  }

  /** Registers the worker and starts claiming. Resolves once running. */
  async start(): Promise<void> {
    if (this.state !== "new") throw new Error(`worker ${this.workerId} was already started`);
    this.state = "running";
    await registerWorker(this.store.db, this.registration());
    const listenConfig = this.listenConfig();
    if (listenConfig) {
      this.listener = new ReadyListener(
        listenConfig,
        {
          [this.store.db.schema.channel("jobs_ready")]: () => this.wake(true),
          [this.store.db.schema.channel("jobs_cancelled")]: (payload) => this.abortCancelled(payload),
        },
        { onReconnect: () => this.wake(true) },
        { clock: this.clock, logger: this.logger, random: this.options.random },
      );
      await this.listener.start();
    } else {
      this.logger.warn("no direct connection for LISTEN (give directUrl); polling instead", { pollInterval: this.options.pollInterval });
    }
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
    this.wake(true);
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
    if (this.state === "new" || this.state === "stopped") {
      this.state = "stopped";
      return Promise.resolve();
    }
    this.stopping ??= this.shutdown(options.force === true);
    return this.stopping;
  }

  private async shutdown(force: boolean): Promise<void> {
    this.state = "stopping";
    this.clock.clearTimeout(this.pollTimer);
    this.clock.clearTimeout(this.limitTimer);
    this.maintenanceTimers?.stop();
    await this.listener?.stop();
    await touchWorker(this.store.db, this.registration(), "stopping").catch(() => undefined);
    await this.fetchRound; // a claim in flight ends first (what it got is started or handed back)
    // Jobs held for later slots never start: back to pending for other workers at once.
    await this.releaseUnstarted(this.held.removeAll());
    if (this.running.size > 0) {
      const cut = force || this.forceRequested;
      this.logger.info("waiting for running jobs to finish", { running: this.running.size, graceSeconds: cut ? 0 : this.options.shutdownTimeout });
      await this.waitForIdle(cut ? 0 : this.options.shutdownTimeout * 1000);
    }
    const abandoned = [...this.running.values()].filter((r) => r.phase === "executing");
    for (const r of abandoned) r.abandon("shutdown");
    if (abandoned.length > 0) {
      const released = await this.store
        .release(abandoned.map((r) => ({ id: r.job.id, leaseToken: r.leaseToken })), `worker ${this.workerId} shut down before the job finished`)
        .catch((error: unknown) => {
          this.logger.error("could not return jobs to pending; they run again after their leases expire", { error: String(error) });
          return [];
        });
      this.logger.warn("returned unfinished jobs to pending", { jobIds: released });
    }
    await this.completer.drain();
    // Dependents handed over by completions that were in flight when the worker began to stop,
    // and any that a write whose reply was lost leased to it.
    await this.handoffs.settled();
    await this.handoffs.releaseUnknown().catch((error: unknown) => {
      this.logger.error("could not return jobs a lost completion reply handed over to pending; they run again after their leases expire", { error: String(error) });
    });
    this.clock.clearTimeout(this.heartbeatTimer);
    await deregisterWorker(this.store.db, this.workerId).catch(() => undefined);
    this.state = "stopped";
    this.logger.info("worker stopped");
    this.emit("stopped");
  }

  /** Returns claimed jobs that will not start here (by default: the worker is stopping) to pending, without using a retry. */
  private async releaseUnstarted(rows: JobRow[], reason = `worker ${this.workerId} shut down before the job started`): Promise<void> {
    if (rows.length === 0) return;
    const leases = rows.map((r) => ({ id: r.id, leaseToken: r.lease_token as string }));
    try {
      const released = await this.store.release(leases, reason, { started: false });
      this.logger.info("returned claimed jobs that had not started to pending", { jobIds: released });
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

  /** Asks the fetch loop to claim; `reset` ends the idle backoff (a notification arrived). */
  private wake(reset = false): void {
    if (reset) this.idleRounds = 0;
    if (this.state !== "running") return;
    if (this.fetching) {
      this.fetchAgain = true;
      return;
    }
    this.fetching = true;
    // Start on the next turn of the event loop: jobs whose completions were
    // written together all free their slots first, so one claim asks for all
    // of those slots instead of one claim per slot.
    this.fetchRound = new Promise<void>((resolve) => {
      setImmediate(() => {
        void this.fetchLoop().finally(() => {
          this.fetching = false;
          resolve();
          // A wake-up that arrived after the loop's last check (a slot freed
          // while it was returning) would otherwise wait for the next poll.
          if (this.fetchAgain) this.wake();
          else this.schedulePoll();
        });
      });
    });
  }

  private async fetchLoop(): Promise<void> {
    do {
      this.fetchAgain = false;
      if (this.state !== "running") return;
      // A slot is free once its executor has returned; the completions still
      // being written may run up to one more slot's worth each (or `prefetch`
      // if larger), no further.
      const backlog = Math.max(0, this.completer.pending - Math.max(this.options.maxConcurrentJobs, this.options.prefetch));
      this.heldBack = backlog > 0;
      let free = this.options.maxConcurrentJobs - this.running.size - backlog;
      if (free > 0 && this.held.size > 0) {
        const next = this.held.take(free, this.clock.now());
        free -= next.length;
        if (next.length > 0) await this.startJobs(next);
      }
      // Every slot runs a job and more than `prefetch` are held: those completions handed over
      // beyond that go back to pending (and other workers are told) instead of waiting here.
      if (this.running.size >= this.options.maxConcurrentJobs && this.held.size > this.options.prefetch) {
        const excess = this.held.removeNewest(this.held.size - this.options.prefetch);
        this.handoffs.handBack(excess, (rows) => this.releaseUnstarted(rows, `handed to worker ${this.workerId} by a completion while its slots were busy`));
      }
      if (free > 0) {
        let rows: JobRow[];
        try {
          const round = await this.claimer.claim(this.workerId, free, this.options.staleTimeout);
          rows = round.rows;
          if (round.retryInMs !== undefined) this.wakeAfter(round.retryInMs);
        } catch (error) {
          this.idleRounds++;
          this.logger.warn("claiming jobs failed", { error: String(error) });
          return;
        }
        this.idleRounds = rows.length === 0 ? this.idleRounds + 1 : 0;
        if (this.state !== "running") {
          // stop() began during the claim: these never start; hand them back.
          await this.releaseUnstarted(rows);
          return;
        }
        if (rows.length > 0) await this.startJobs(rows);
        if (rows.length < free) return; // nothing more is ready: nothing to hold either
        this.fetchAgain = true; // there may be more
      }
      await this.refillHeld();
    } while (this.fetchAgain);
  }

  /**
   * Claims plain jobs ahead of free slots once at most a quarter of `prefetch`
   * are held, for the rest: three quarters of it per claim. (At a half, with
   * prefetch 100, no-op drains at c=50 measured 5-18% slower in 7 of 7
   * alternated pairs: twice the claims, each of half the rows; the c=10 pairs
   * were split. docs/BENCHMARKS.md.)
   */
  private async refillHeld(): Promise<void> {
    const want = this.options.prefetch - this.held.size;
    if (this.options.prefetch === 0 || this.held.size > this.options.prefetch / 4 || this.claimer.usingFlowControl) return;
    const requestedAt = this.clock.now();
    let rows: JobRow[];
    try {
      rows = await this.claimer.claimAhead(this.workerId, want, this.options.staleTimeout);
    } catch (error) {
      this.logger.warn("claiming jobs ahead failed", { error: String(error) });
      return;
    }
    if (this.state !== "running") {
      await this.releaseUnstarted(rows);
      return;
    }
    // The lease was set after the request left (so it ends no earlier than this
    // deadline); the claim committed before the reply came back (so the time
    // held, counted from the reply, is never more than the real one).
    const leaseUntil = requestedAt + this.options.staleTimeout * 1000;
    this.held.add(rows, this.clock.now(), leaseUntil);
    // Slots freed while this claim was in flight start from what it got.
    if (rows.length > 0 && this.options.maxConcurrentJobs - this.running.size > 0) this.fetchAgain = true;
  }

  /**
   * What a completion batch may hand this worker: the dependents its jobs
   * make ready, up to one per completion and within the room for held jobs
   * (`maxConcurrentJobs + prefetch`, less what runs and is held).
   */
  private handoffRequest(batchSize: number): HandoffRequest | undefined {
    // Under flow control, tokens, caps and tenants' shares are the flow-control claim's to apply.
    if (this.state !== "running" || this.claimer.usingFlowControl) return undefined;
    return this.handoffs.request(batchSize, this.options.maxConcurrentJobs + this.options.prefetch - this.running.size - this.held.size);
  }

  /** Dependents a completion leased to this worker: held, to start as slots free (handed back if it is stopping). */
  private takeHanded(rows: JobRow[], requestedAt: number): void {
    if (this.state !== "running") {
      this.handoffs.handBack(rows, (r) => this.releaseUnstarted(r));
      return;
    }
    // As for a claim ahead: the lease runs at least until this deadline.
    this.held.add(rows, this.clock.now(), requestedAt + this.options.staleTimeout * 1000);
    this.wake();
  }

  /** Claims again once a rate-limited key has a token (jobs wait on it). */
  private wakeAfter(ms: number): void {
    this.clock.clearTimeout(this.limitTimer);
    this.limitTimer = this.clock.setTimeout(() => this.wake(true), Math.max(1, Math.ceil(ms)));
  }

  private schedulePoll(): void {
    if (this.state !== "running") return;
    this.clock.clearTimeout(this.pollTimer);
    const cap = this.options.pollInterval * 1000;
    const delay = this.idleRounds > 0 ? Math.min(cap, 100 * 2 ** Math.min(this.idleRounds - 1, 20)) : cap;
    this.pollTimer = this.clock.setTimeout(() => this.wake(), Math.round(delay * (0.8 + 0.4 * this.options.random())));
  }

  /** Runs a claimed job to its end in the caller's slot (a parent running the child it waits on). */
  private async runInline(row: JobRow): Promise<void> {
    const [entry] = await this.prepare([row]);
    if (entry) await this.run(entry);
  }

  private async startJobs(rows: JobRow[]): Promise<void> {
    // Never more than the free slots were claimed, so each job starts at once.
    for (const entry of await this.prepare(rows)) void this.run(entry);
  }

  /**
   * Registers claimed jobs as running, with their dependencies' results. A job
   * never starts without them: if they cannot be read (the database is
   * restarting), the jobs that need them go back to pending, without using a
   * retry, for a later claim.
   */
  private async prepare(claimed: JobRow[]): Promise<RunningJob[]> {
    let rows = claimed;
    const depIds = [...new Set(rows.flatMap((r) => r.dependencies.map(dependencyId)))];
    let results = new Map<string, unknown>();
    if (depIds.length > 0) {
      let lastError: unknown;
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          results = await dependencyResults(this.store.db, depIds);
          lastError = undefined;
          break;
        } catch (error) {
          lastError = error;
          await sleep(this.clock, 100 * (attempt + 1));
        }
      }
      if (lastError !== undefined) {
        const waiting = rows.filter((r) => r.dependencies.length > 0);
        rows = rows.filter((r) => r.dependencies.length === 0);
        this.logger.warn("could not read dependency results; returning the jobs that need them to pending", { error: String(lastError), jobIds: waiting.map((r) => r.id) });
        await this.store
          .release(waiting.map((r) => ({ id: r.id, leaseToken: r.lease_token as string })), "the worker could not read the dependencies' results", { started: false })
          .catch(() => undefined); // if even that fails, the leases expire and the jobs are rescued
      }
    }
    const entries: RunningJob[] = [];
    for (const row of rows) {
      const job = toJob(row);
      // A job claimed ahead (prefetch) starts now, not when it was claimed: `ctx.job.startedAt` says so.
      const held = this.held.waitedMs(row);
      if (held !== undefined && job.startedAt !== null) job.startedAt = new Date(job.startedAt.getTime() + held);
      const dependencyResultsOfJob: Record<string, JsonValue | null> = {};
      for (const id of job.dependencies.map(dependencyId)) dependencyResultsOfJob[id] = (results.get(id) ?? null) as JsonValue | null;
      const entry: RunningJob = new RunningJobState(job, row.lease_token as string, dependencyResultsOfJob, held);
      this.running.set(job.id, entry);
      this.emit("job:start", job);
      entries.push(entry);
    }
    return entries;
  }

  private async run(entry: RunningJob): Promise<void> {
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (this.running.get(entry.job.id) === entry) this.running.delete(entry.job.id);
      if (this.running.size === 0) for (const done of this.idleWaiters.splice(0)) done();
      this.wake();
    };
    try {
      await runAttempt(entry, {
        release,
        workerId: this.workerId,
        executors: [...this.custom, ...this.builtIn],
        logger: this.logger,
        clock: this.clock,
        store: this.store,
        completer: this.completer,
        retryBackoff: this.options.retryBackoff,
        random: this.options.random,
        onComplete: (job, result) => this.emit("job:complete", job, result),
        onFail: (job, error, outcome, retryInMs) => {
          this.emit("job:fail", job, error, outcome);
          if (outcome === "retried") this.clock.setTimeout(() => this.wake(true), retryInMs + 5);
        },
        onRateLimited: (_job, retryInMs) => {
          this.clock.setTimeout(() => this.wake(true), retryInMs + 5);
        },
        delegation: (job, signal) =>
          new Delegation(
            {
              jobManager: this.jobManager,
              store: this.store,
              clock: this.clock,
              logger: withFields(this.logger, { jobId: job.id }),
              workerId: this.workerId,
              leaseSeconds: this.options.staleTimeout,
              filter: { queues: this.options.queues, tags: this.options.tags },
              runInline: (row) => this.runInline(row),
              takeHeld: (id) => this.held.takeById(id, this.clock.now()),
            },
            job,
            signal,
          ),
      });
    } finally {
      if (released) {
        // The completion is written: if backed-up completions held claims back, claim again.
        if (this.heldBack) this.wake();
      } else release();
    }
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
    const cancelled = new Set(ids);
    this.held.removeIds(cancelled);
    for (const id of ids) {
      const entry = typeof id === "string" ? this.running.get(id) : undefined;
      if (entry && entry.phase === "executing") {
        this.logger.info("job cancelled while running; aborting the attempt", { jobId: id });
        entry.abandon("lease-lost");
      }
    }
  }

  private scheduleHeartbeat(): void {
    const ms = this.options.heartbeatInterval * 1000 * (0.9 + 0.2 * this.options.random());
    this.heartbeatTimer = this.clock.setTimeout(() => {
      void this.heartbeat().finally(() => {
        if (this.state === "running" || this.state === "stopping") this.scheduleHeartbeat();
      });
    }, ms);
  }

  /** Renews leases, aborts jobs whose lease was lost, and rescues jobs of dead workers. */
  private async heartbeat(): Promise<void> {
    try {
      await touchWorker(this.store.db, this.registration(), this.state === "stopping" ? "stopping" : "running");
      const executing = [...this.running.values()].filter((r) => r.phase === "executing");
      const waiting = this.held.leases(); // the jobs held now: claims in flight may add more meanwhile
      const tokens = [...executing.map((r) => r.leaseToken), ...waiting.tokens];
      const renewedAt = this.clock.now();
      const held = new Set(await this.store.renew(this.workerId, tokens, this.options.staleTimeout));
      // A job held for a later slot whose lease is gone (cancelled, reclaimed) is dropped before it starts.
      waiting.renewed(held, renewedAt, this.options.staleTimeout * 1000);
      for (const r of executing) {
        if (held.has(r.leaseToken) || r.phase !== "executing") continue;
        this.logger.warn("lease lost (job reclaimed or cancelled); aborting the attempt", { jobId: r.job.id });
        r.abandon("lease-lost");
      }
      await this.handoffs.releaseUnknown();
      if (this.options.maintenance && this.state === "running") {
        const rescued = await rescueExpiredLeases(this.store, this.options.staleTimeout, this.logger);
        if (rescued > 0) this.wake(true);
      }
    } catch (error) {
      this.logger.warn("heartbeat failed", { error: String(error) });
    }
  }

  private executorNames(): string[] {
    return [...this.custom, ...this.builtIn].map((e, i) => e.name ?? `custom-${i + 1}`);
  }

  private registration(): WorkerRegistration {
    return {
      id: this.workerId,
      host: os.hostname(),
      pid: process.pid,
      concurrency: this.options.maxConcurrentJobs,
      executors: this.executorNames(),
      queues: this.options.queues,
      tags: this.options.tags,
    };
  }

  private listenConfig(): pg.ClientConfig | undefined {
    if (this.options.directUrl) return { connectionString: this.options.directUrl };
    return clientSettings(this.options.prisma)?.listen;
  }
}

/** A claimed job while this worker runs it. */
class RunningJobState implements RunningJob {
  readonly abort = new AttemptAbort();
  phase: RunningJob["phase"] = "executing";
  constructor(
    readonly job: Job,
    readonly leaseToken: string,
    readonly dependencyResults: Record<string, JsonValue | null>,
    readonly heldMs?: number,
  ) {}

  abandon(reason: "shutdown" | "lease-lost"): void {
    if (this.phase !== "executing") return;
    this.phase = reason;
    this.abort.abort(new Error(reason === "shutdown" ? "the worker is shutting down" : "the job's lease was lost"));
  }
}

export { backoffMs };
