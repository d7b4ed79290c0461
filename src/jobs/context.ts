import type { Clock } from "../core/clock";
import type { Logger } from "../core/logger";
import type { Database } from "../db/database";
import type { CancelNotifier, ReadyNotifier } from "../db/notifier";
import { retryTransient } from "../db/store";

/**
 * What every service of a `JobManager` shares (River's archetype): the
 * database, the clock, the logger, the notifiers, and the statistics count.
 * Nothing in a service reads the wall clock or logs elsewhere.
 */
export interface JobsContext {
  readonly db: Database;
  readonly clock: Clock;
  readonly logger: Logger;
  /** "Jobs are ready": poke it after the commit of the rows it is about. */
  readonly notifier: ReadyNotifier;
  /** "These jobs were cancelled": their workers abort them. */
  readonly cancelNotifier: CancelNotifier;
  /** Notes jobs written (committed) for the planner statistics check. */
  wrote(count: number): void;
}

/**
 * Runs a transaction, again if it lost a deadlock or serialization race;
 * inside the caller's own transaction only once (a conflict aborts their
 * transaction: only they can retry it).
 */
export function retryDeadlocks<T>(inCallerTx: boolean, fn: () => Promise<T>): Promise<T> {
  return inCallerTx ? fn() : retryTransient(fn);
}
