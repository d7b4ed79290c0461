import { checkText, LIMITS } from "../core/checks";
import { ValidationError } from "../core/errors";
import type { CreateJobInput, Job, JsonValue } from "../core/types";
import { toJob } from "../db/sql/rows";
import { childrenByKey, dueWaits, holdLease, jobSteps } from "../db/sql/workflow";
import { retryDeadlocks, type JobsContext } from "./context";
import { orderBatch } from "./dependencies";
import type { JobOperations } from "./operations";
import type { JobReader } from "./reads";
import { normalizeJobInput } from "./validation";
import type { JobWriter } from "./writer";

/** The running job that delegates: its lease fences every child it creates. */
export interface DelegatingParent {
  id: string;
  tenant: string | null;
  taskId: string | null;
  leaseToken: string;
}

/** A stored step of a job (`ctx.step`), or a sleep (`ctx.sleep`, named `sleep:<name>`). */
export interface JobStep {
  name: string;
  /** The attempt that ran it. */
  attempt: number;
  /** What the step returned (JSON); null for a sleep. */
  result: JsonValue | null;
  /** For a sleep: when the job wakes. */
  wakeAt: Date | null;
  createdAt: Date;
}

/** The reason written on children cancelled because their parent's wait timed out. */
export function stoppedWaitingReason(parentId: string): string {
  return `cancelled: its parent ${JSON.stringify(parentId)} stopped waiting for it (timeout)`;
}

/**
 * Durable workflows, the database side: children keyed within their parent
 * (created once, found again by a retried or resumed parent), the deadline
 * of a parked parent's wait, and stored steps. The worker side is
 * worker/workflow.ts.
 */
export class WorkflowService {
  constructor(
    private readonly ctx: JobsContext,
    private readonly writer: JobWriter,
    private readonly reader: JobReader,
    private readonly operations: JobOperations,
  ) {}

  /**
   * The children of a running job with these keys: the ones it made already
   * (live or archived, found by key), and the others created now, atomically.
   * In input order. `undefined` when the parent's lease is gone (nothing is
   * written: a zombie attempt cannot create children).
   */
  async delegate(parent: DelegatingParent, inputs: readonly CreateJobInput[], keys: readonly string[], options: { detached: boolean }): Promise<Job[] | undefined> {
    if (inputs.length !== keys.length) throw new ValidationError("keys", "one key per job");
    keys.forEach((key, i) => checkText(key, `keys[${i}]`, LIMITS.idLength, false));
    const normalized = inputs.map((input, i) => normalizeJobInput(input, inputs.length > 1 ? `jobs[${i}].` : ""));
    const out = await retryDeadlocks(false, () =>
      this.ctx.db.transaction(async (sql) => {
        if (!(await holdLease(sql, parent.id, parent.leaseToken))) return undefined;
        const existing = await childrenByKey(sql, parent.id, keys);
        const missing = normalized.filter((_, i) => !existing.has(keys[i]));
        const keyOf = new Map(normalized.map((job, i) => [job.id, keys[i]]));
        const written =
          missing.length === 0
            ? { rows: [], ready: false }
            : await this.writer.write(sql, orderBatch(missing), { parentId: parent.id, tenant: parent.tenant, taskId: parent.taskId, keys: keyOf, detached: options.detached });
        const created = new Map(written.rows.map((row) => [row.delegation_key as string, row]));
        return { rows: keys.map((key) => existing.get(key) ?? created.get(key)), ready: written.ready, count: written.rows.length };
      }),
    );
    if (!out) return undefined;
    if (out.ready) this.ctx.notifier.poke();
    if (out.count > 0) this.ctx.wrote(out.count);
    return out.rows.map((row, i) => {
      if (!row) throw new Error(`delegation: child ${JSON.stringify(keys[i])} was neither found nor created`);
      return { ...toJob(row), childIds: [] };
    });
  }

  /**
   * Cancels the children still unfinished of every parked parent whose wait
   * timed out (with what depends on them, running ones aborted); each such
   * parent then wakes and fails with a timeout. Workers call this every
   * second. Returns how many children it cancelled.
   */
  async expireWaits(limit = 100): Promise<number> {
    let cancelled = 0;
    for (const wait of await dueWaits(this.ctx.db, limit)) {
      for (const child of wait.child_ids) {
        try {
          const job = await this.operations.cancelJob(child, { cascade: true, reason: stoppedWaitingReason(wait.parent_id) });
          if (job.status === "cancelled") cancelled++;
        } catch (error) {
          // Finished meanwhile (its end woke the parent already), or gone: nothing to cancel.
          this.ctx.logger.debug("wait timeout: child not cancelled", { jobId: child, error: String(error) });
        }
      }
    }
    return cancelled;
  }

  /** A job's stored steps and sleeps, oldest first; `null` if no job has this id. */
  async steps(id: string): Promise<JobStep[] | null> {
    if (!(await this.reader.getJob(id))) return null;
    return (await jobSteps(this.ctx.db, id)).map((s) => ({ name: s.name, attempt: s.attempt, result: (s.result ?? null) as JsonValue | null, wakeAt: s.wake_at, createdAt: s.created_at }));
  }
}
