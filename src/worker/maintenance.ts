import cron from "node-cron";
import { databaseFor, type Database, type RawQueryClient } from "../db/database";
import { pruneHistory } from "../db/sql/read";
import { claimMaintenance, forgetDeadWorkers } from "../db/sql/workers";
import { refreshAndLog } from "../db/statistics";
import type { JobStore } from "../db/store";
import type { JobManager } from "../jobs/JobManager";
import type { Logger } from "../core/logger";
import { systemClock, type Clock } from "../core/clock";

/**
 * Prunes history older than `retentionDays`, at most once per `intervalHours`
 * across all workers: the first caller in an interval wins the gate in the
 * database and prunes; the others do nothing. A plain function: the worker's
 * cron task calls it every minute, tests call it directly.
 */
export function runHistoryPruning(
  prisma: RawQueryClient,
  options: { retentionDays: number; intervalHours: number },
): Promise<{ ran: boolean; deleted: number }> {
  return pruneHistoryGated(databaseFor(prisma), options);
}

async function pruneHistoryGated(db: Database, options: { retentionDays: number; intervalHours: number }): Promise<{ ran: boolean; deleted: number }> {
  if (!(await claimMaintenance(db, "prune_history", options.intervalHours * 3600))) return { ran: false, deleted: 0 };
  return { ran: true, deleted: await pruneHistory(db, options.retentionDays) };
}

/**
 * Reclaims jobs whose lease expired (their worker died or hung): retried while
 * retries are left, else failed with their dependents cancelled. Also forgets
 * workers whose heartbeat stopped long ago. Returns how many jobs it rescued.
 */
export async function rescueExpiredLeases(store: JobStore, staleTimeoutSeconds: number, logger: Logger): Promise<number> {
  const { retried, failed } = await store.rescueExpired();
  if (retried + failed > 0) logger.warn("reclaimed jobs whose lease expired", { retried, failed });
  const forgotten = await forgetDeadWorkers(store.db, Math.max(staleTimeoutSeconds * 10, 3600));
  if (forgotten.length > 0) logger.info("forgot workers that stopped sending heartbeats", { workerIds: forgotten });
  return retried + failed;
}

/** What {@link MaintenanceTimers} needs from its worker. */
export interface MaintenanceContext {
  workerId: string;
  db: Database;
  jobManager: JobManager;
  clock: Clock;
  logger: Logger;
  historyRetentionDays: number;
  cleanupIntervalHours: number;
}

/**
 * The timers of a worker with `maintenance` on: every second it fires due
 * schedules, expires the waits of parked parents that timed out, and
 * analyses the job tables if they outgrew their planner statistics; every minute it offers to prune history (gates in the database
 * let one worker at a time do each). A timer re-arms only once its round has
 * finished, and never after {@link MaintenanceTimers.stop}.
 */
export class MaintenanceTimers {
  private active = false;
  private readonly timers: unknown[] = [];
  private pruneTask: { stop(): void } | undefined;

  constructor(private readonly context: MaintenanceContext) {}

  start(): void {
    if (this.active) return;
    this.active = true;
    this.everySecond(0, () => this.runSchedules());
    this.everySecond(2, () => this.expireWaits());
    this.everySecond(1, () => refreshAndLog(this.context.db, this.context.logger, { onlyPermitted: false, failureLevel: "warn" }));
    this.pruneTask = this.everyMinute(() => this.pruneHistory());
  }

  /** Clears the timers; a round in flight finishes but does not re-arm. */
  stop(): void {
    this.active = false;
    for (const timer of this.timers) this.context.clock.clearTimeout(timer);
    this.pruneTask?.stop();
    this.pruneTask = undefined;
  }

  /** Runs `round` a second after the previous one finished (it must not reject), until stopped. */
  private everySecond(slot: number, round: () => Promise<void>): void {
    this.timers[slot] = this.context.clock.setTimeout(() => {
      void round().finally(() => {
        if (this.active) this.everySecond(slot, round);
      });
    }, 1000);
  }

  /**
   * The prune task's trigger: a node-cron task on the minute with the system
   * clock, else the injected clock's timer (a test's clock drives it too).
   */
  private everyMinute(round: () => Promise<void>): { stop(): void } {
    if (this.context.clock === systemClock) {
      const task = cron.schedule("* * * * *", () => void round(), { name: `skein-prune-${this.context.workerId}` });
      return { stop: () => void task.destroy() };
    }
    let timer: unknown;
    const arm = () => {
      timer = this.context.clock.setTimeout(() => void round().finally(() => this.active && arm()), 60_000);
    };
    arm();
    return { stop: () => this.context.clock.clearTimeout(timer) };
  }

  /** Enqueues the jobs of due schedules (exactly once per tick across workers). */
  private async runSchedules(): Promise<void> {
    const { clock, jobManager, logger } = this.context;
    try {
      const fired = await jobManager.runDueSchedules({ now: new Date(clock.now()) });
      for (const f of fired) logger.info("schedule fired", { schedule: f.schedule, tickAt: f.tickAt.toISOString(), jobId: f.jobId });
    } catch (error) {
      logger.warn("running schedules failed", { error: String(error) });
    }
  }

  /** Cancels the unfinished children of parked parents whose wait timed out (each parent then wakes and fails). */
  private async expireWaits(): Promise<void> {
    const { jobManager, logger } = this.context;
    try {
      const cancelled = await jobManager.expireWaits();
      if (cancelled > 0) logger.info("wait timeouts: cancelled delegated jobs", { cancelled });
    } catch (error) {
      logger.warn("expiring waits failed", { error: String(error) });
    }
  }

  private async pruneHistory(): Promise<void> {
    const { db, historyRetentionDays, cleanupIntervalHours, logger } = this.context;
    try {
      const outcome = await pruneHistoryGated(db, { retentionDays: historyRetentionDays, intervalHours: cleanupIntervalHours });
      if (outcome.ran) logger.info("pruned job history", { deleted: outcome.deleted, retentionDays: historyRetentionDays });
    } catch (error) {
      logger.warn("pruning history failed", { error: String(error) });
    }
  }
}
