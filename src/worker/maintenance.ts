import { databaseFor, type RawQueryClient } from "../db/database";
import { pruneHistory } from "../db/sql/read";
import { analyzeTables, PLANNED_TABLES, staleStatistics } from "../db/sql/stats";
import { claimMaintenance, forgetDeadWorkers, maintenanceDue, postponeMaintenance } from "../db/sql/workers";
import type { JobStore } from "../db/store";
import type { Logger } from "../logging";

/**
 * Prunes history older than `retentionDays`, at most once per `intervalHours`
 * across all workers: the first caller in an interval wins the gate in the
 * database and prunes; the others do nothing. A plain function: the worker's
 * cron task calls it every minute, tests call it directly.
 */
export async function runHistoryPruning(
  prisma: RawQueryClient,
  options: { retentionDays: number; intervalHours: number },
): Promise<{ ran: boolean; deleted: number }> {
  const db = databaseFor(prisma);
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

/** What {@link refreshPlannerStatistics} did. */
export interface StatisticsRefresh {
  /**
   * Tables it asked PostgreSQL to analyse (one that another session holds,
   * such as autovacuum, is skipped by PostgreSQL and tried again later).
   */
  analysed: string[];
  /**
   * Tables that outgrew their statistics but that this role may not analyse
   * (it neither owns them nor the database, nor holds MAINTAIN): no worker
   * looks again for 10 minutes.
   */
  notPermitted: string[];
}

/**
 * Analyses the job tables when they have outgrown their planner statistics
 * (see `staleStatistics` in src/db/sql/stats.ts), at most once per
 * `intervalSeconds` across all workers. New statistics make every connection
 * re-plan its prepared claim, completion and insert statements, so a burst of
 * jobs after an idle spell runs on index lookups within seconds instead of on
 * whole-table scans until autovacuum's next pass. A worker with `maintenance`
 * on calls it every second; tests call it directly.
 */
export async function refreshPlannerStatistics(prisma: RawQueryClient, options: { intervalSeconds: number } = { intervalSeconds: 2 }): Promise<StatisticsRefresh> {
  const db = databaseFor(prisma);
  const nothing: StatisticsRefresh = { analysed: [], notPermitted: [] };
  const stale = await staleStatistics(db, PLANNED_TABLES);
  if (stale.length === 0 || !(await maintenanceDue(db, "analyze", options.intervalSeconds))) return nothing;
  if (!(await claimMaintenance(db, "analyze", options.intervalSeconds))) return nothing;
  const analysed = stale.filter((t) => t.analyzable).map((t) => t.name);
  const notPermitted = stale.filter((t) => !t.analyzable).map((t) => t.name);
  await analyzeTables(db, analysed);
  if (notPermitted.length > 0) await postponeMaintenance(db, "analyze", 600);
  return { analysed, notPermitted };
}
