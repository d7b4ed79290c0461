import { databaseFor, type RawQueryClient } from "../db/database";
import { pruneHistory } from "../db/sql/read";
import { claimMaintenance, forgetDeadWorkers } from "../db/sql/workers";
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
