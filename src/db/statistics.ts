import type { Logger } from "../core/logger";
import { databaseFor, type Database, type RawQueryClient } from "./database";
import { analyzeTables, PLANNED_TABLES, staleStatistics } from "./sql/stats";
import { claimMaintenance, maintenanceDue, postponeMaintenance } from "./sql/workers";

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

/** At most one ANALYZE per this many seconds across all workers and producers. */
const INTERVAL_SECONDS = 2;

/**
 * Analyses the job tables when they have outgrown their planner statistics
 * (see `staleStatistics` in src/db/sql/stats.ts), at most once per
 * `intervalSeconds` across all workers and producers. New statistics make every connection
 * re-plan its prepared claim, completion and insert statements, so a burst of
 * jobs after an idle spell runs on index lookups within seconds instead of on
 * whole-table scans until autovacuum's next pass. A worker with `maintenance`
 * on calls it every second, a `JobManager` after every 1,000 jobs it creates;
 * tests call it directly.
 */
export function refreshPlannerStatistics(prisma: RawQueryClient, options: { intervalSeconds?: number; schema?: string } = {}): Promise<StatisticsRefresh> {
  return refreshStatistics(databaseFor(prisma, options.schema), options.intervalSeconds ?? INTERVAL_SECONDS, { onlyPermitted: false });
}

/**
 * With `onlyPermitted` (a producer's check), a role that may analyse none of
 * the stale tables does nothing at all: it neither takes the shared gate nor
 * postpones it, so the workers (often another role, the tables' owner) still do.
 */
async function refreshStatistics(db: Database, intervalSeconds: number, { onlyPermitted }: { onlyPermitted: boolean }): Promise<StatisticsRefresh> {
  const nothing: StatisticsRefresh = { analysed: [], notPermitted: [] };
  const stale = await staleStatistics(db, PLANNED_TABLES);
  const analysed = stale.filter((t) => t.analyzable).map((t) => t.name);
  const notPermitted = onlyPermitted ? [] : stale.filter((t) => !t.analyzable).map((t) => t.name);
  if (analysed.length + notPermitted.length === 0 || !(await maintenanceDue(db, "analyze", intervalSeconds))) return nothing;
  if (!(await claimMaintenance(db, "analyze", intervalSeconds))) return nothing;
  await analyzeTables(db, analysed);
  if (notPermitted.length > 0) await postponeMaintenance(db, "analyze", 600);
  return { analysed, notPermitted };
}

/**
 * One refresh, logged: what it analysed (info), tables this role may not
 * analyse (warn), and a failure at `failureLevel`. Never rejects, also when
 * the logger throws. Used by the worker's timer and by {@link StatisticsWatch}.
 */
export function refreshAndLog(db: Database, logger: Logger, { onlyPermitted, failureLevel }: { onlyPermitted: boolean; failureLevel: "warn" | "debug" }): Promise<void> {
  return refreshStatistics(db, INTERVAL_SECONDS, { onlyPermitted })
    .then(({ analysed, notPermitted }) => {
      if (analysed.length > 0) logger.info("analysed tables that outgrew their planner statistics", { tables: analysed });
      if (notPermitted.length > 0) {
        logger.warn("tables outgrew their planner statistics but this role may not analyse them (it needs to own them, or MAINTAIN); no one looks again for 10 minutes", {
          tables: notPermitted,
        });
      }
    })
    .catch((error: unknown) => {
      logger[failureLevel]("refreshing planner statistics failed", { error: String(error) });
    })
    .catch(() => undefined);
}

/**
 * A producer's side of the refresh: counts the jobs it writes and, after every
 * `everyRows`, checks the statistics in the background (one check at a time),
 * analysing only what this role may analyse, so that a process that only
 * creates jobs does not keep inserting on a plan made for an empty table
 * (docs/BENCHMARKS.md, "A producer alone"). `isOpen` says whether the client
 * still takes queries (a check never starts after it was closed).
 */
export class StatisticsWatch {
  private written = 0;
  private checking = false;

  constructor(
    private readonly db: Database,
    private readonly logger: Logger,
    private readonly isOpen: () => boolean,
    private readonly everyRows = 1000,
  ) {}

  /** Notes `rows` jobs written (committed); returns the check this started, if any (it never rejects). */
  wrote(rows: number): Promise<void> | undefined {
    this.written += rows;
    if (this.written < this.everyRows || this.checking || !this.isOpen()) return undefined;
    this.written = 0;
    this.checking = true;
    // Best effort: a failure (the client closed meanwhile) only delays the refresh.
    return refreshAndLog(this.db, this.logger, { onlyPermitted: true, failureLevel: "debug" }).finally(() => {
      this.checking = false;
    });
  }
}
