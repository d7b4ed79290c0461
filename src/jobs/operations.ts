import { checkText, checkTime, LIMITS } from "../core/checks";
import { InvalidJobStateError, ValidationError } from "../core/errors";
import type { Job } from "../core/types";
import { deadLetters } from "../db/sql/graph";
import { pruneHistory } from "../db/sql/read";
import { toJob } from "../db/sql/rows";
import { retryDeadlocks, type JobsContext } from "./context";
import { cancelInTransaction, retryInTransaction } from "./graph";
import type { JobReader } from "./reads";

/** Options for {@link JobOperations.cancelJob}. */
export interface CancelOptions {
  /** Cancel everything downstream too, running jobs included, whatever the edges' policies. @defaultValue false */
  cascade?: boolean;
  /** Recorded as the job's error message. @defaultValue "cancelled by request" */
  reason?: string;
}

/** What `replayDeadLetters` did. */
export interface ReplayOutcome {
  replayed: string[];
  /** Jobs back to pending, descendants included. */
  restored: number;
  skipped: Array<{ id: string; reason: string }>;
}

/** Steering jobs: cancel, retry, replay dead letters, prune history. */
export class JobOperations {
  constructor(
    private readonly ctx: JobsContext,
    private readonly reader: JobReader,
  ) {}

  /** See `JobManager.cancelJob`. */
  async cancelJob(id: string, options: CancelOptions | string = {}): Promise<Job> {
    const { cascade = false, reason = "cancelled by request" } = typeof options === "string" ? { reason: options } : options;
    const outcome = await retryDeadlocks(false, () => this.ctx.db.transaction((sql) => cancelInTransaction(sql, id, { cascade, reason })));
    if (outcome.ended.length > 0) this.ctx.cancelNotifier.send(outcome.ended);
    if (outcome.ready > 0) this.ctx.notifier.poke();
    return (await this.reader.getJob(id)) as Job;
  }

  /** See `JobManager.retryJob`. */
  async retryJob(id: string, options: { downstream?: boolean } = {}): Promise<Job> {
    const rows = await retryDeadlocks(false, () => this.ctx.db.transaction((sql) => retryInTransaction(sql, id, { downstream: options.downstream === true })));
    if (rows.some((r) => r.pending_dependencies === 0)) this.ctx.notifier.poke();
    this.ctx.wrote(rows.length);
    return toJob(rows[0]);
  }

  /** See `JobManager.replayDeadLetters`. */
  async replayDeadLetters(options: { ids?: string[]; since?: Date | string; all?: boolean }): Promise<ReplayOutcome> {
    const chosen = [options.ids !== undefined, options.since !== undefined, options.all === true].filter(Boolean).length;
    if (chosen !== 1) throw new ValidationError("replay", "give exactly one of ids, since or all");
    const ids = options.ids?.map((id, i) => checkText(id, `ids[${i}]`, LIMITS.idLength, false));
    const since = options.since === undefined ? undefined : checkTime(options.since, "since");
    const failed = await deadLetters(this.ctx.db, { ids, since, limit: 100_000 });
    const outcome: ReplayOutcome = { replayed: [], restored: 0, skipped: [] };
    for (const row of failed.reverse()) {
      try {
        const rows = await retryDeadlocks(false, () => this.ctx.db.transaction((sql) => retryInTransaction(sql, row.id, { downstream: true })));
        outcome.replayed.push(row.id);
        outcome.restored += rows.length;
      } catch (error) {
        if (!(error instanceof InvalidJobStateError)) throw error;
        outcome.skipped.push({ id: row.id, reason: error.message });
      }
    }
    for (const id of ids ?? []) if (!failed.some((r) => r.id === id)) outcome.skipped.push({ id, reason: `job ${JSON.stringify(id)} is not a failed job in history` });
    if (outcome.replayed.length > 0) this.ctx.notifier.poke();
    this.ctx.wrote(outcome.restored);
    return outcome;
  }

  /** Deletes history older than `days` days; returns how many rows were deleted. Live jobs are never affected. */
  async cleanupOldHistory(days: number): Promise<number> {
    if (typeof days !== "number" || !Number.isFinite(days) || days < 0) throw new ValidationError("days", "must be a non-negative number");
    return pruneHistory(this.ctx.db, days);
  }
}
