import type { Sql } from "../db/database";
import { archiveCancelled, finishDownstream } from "../db/sql/cancel";
import { cancelledDescendants, edgesOf, type PolicyEdge } from "../db/sql/graph";
import { archivedStatuses, insertEdges, lockLiveJobs } from "../db/sql/insert";
import { findJob, restoreFromHistory } from "../db/sql/read";
import type { JobRow } from "../db/sql/rows";
import { InvalidJobStateError, JobNotFoundError } from "../core/errors";
import { dependencyId, JobStatus, type DependencySpec, type FailurePolicy } from "../core/types";

/**
 * Graph operations of JobManager, each run inside one transaction:
 * cancelling (with or without everything downstream) and retrying (with or
 * without the cancelled descendants).
 */

/** What a cancel did. */
export interface CancelOutcome {
  /** Every job archived by this cancel (the job first). */
  ended: string[];
  /** Dependents that became ready (they ignore the cancellation). */
  ready: number;
}

/** Cancels a live job; its dependents follow their edge policies, or with `cascade` are all cancelled. */
export async function cancelInTransaction(sql: Sql, id: string, options: { cascade: boolean; reason: string }): Promise<CancelOutcome> {
  if (await archiveCancelled(sql, id, options.reason)) {
    const down = await finishDownstream(sql, [{ id, status: "cancelled" }], { everything: options.cascade });
    return { ended: [id, ...down.ended.map((e) => e.id)], ready: down.ready };
  }
  const existing = await findJob(sql, id);
  if (!existing) throw new JobNotFoundError(id);
  if (existing.status !== JobStatus.CANCELLED) throw new InvalidJobStateError(id, `job ${JSON.stringify(id)} has already ${existing.status}; it cannot be cancelled`);
  return { ended: [], ready: 0 };
}

/**
 * Puts a failed or cancelled job back to pending (retry count reset), and with
 * `downstream` its cancelled descendants too, keeping the edges. A descendant
 * that still depends on something failed or cancelled (not being restored,
 * and not ignored by its edge) stays cancelled, and so does what lies below it.
 * Returns the restored rows, the job first.
 */
export async function retryInTransaction(sql: Sql, id: string, options: { downstream: boolean }): Promise<JobRow[]> {
  const existing = await findJob(sql, id);
  if (!existing) throw new JobNotFoundError(id);
  if (existing.status !== JobStatus.FAILED && existing.status !== JobStatus.CANCELLED) {
    throw new InvalidJobStateError(id, `job ${JSON.stringify(id)} is ${existing.status}; only failed or cancelled jobs can be retried`);
  }
  const descendants = options.downstream ? await cancelledDescendants(sql, id) : [];
  // The job's own edges come from its `dependencies` as given (older archived jobs may have lost theirs).
  const edges: PolicyEdge[] = [
    ...existing.dependencies.map((spec: DependencySpec) => ({ job_id: id, depends_on_id: dependencyId(spec), on_failure: policyOf(spec) })),
    ...(descendants.length > 0 ? await edgesOf(sql, descendants) : []),
  ];
  const states = await dependencyStates(sql, [...new Set(edges.map((e) => e.depends_on_id))]);
  const plan = planRestore(id, descendants, edges, states);
  const restored: JobRow[] = [];
  for (const target of plan.order) {
    const row = await restoreFromHistory(sql, target, plan.pending.get(target) ?? 0);
    if (!row) throw new InvalidJobStateError(id, `job ${JSON.stringify(target)} changed while retrying; try again`);
    restored.push(row);
  }
  await insertEdges(sql, edges.filter((e) => plan.pending.has(e.job_id)));
  return restored;
}

function policyOf(spec: DependencySpec): FailurePolicy {
  return typeof spec === "string" ? "cancel" : (spec.onFailure ?? "cancel");
}

async function dependencyStates(sql: Sql, ids: string[]): Promise<Map<string, string>> {
  const states = new Map<string, string>();
  for (const r of await lockLiveJobs(sql, ids)) states.set(r.id, "live");
  for (const r of await archivedStatuses(sql, ids.filter((d) => !states.has(d)))) states.set(r.id, r.status);
  return states;
}

/** Decides, in dependency order, which jobs can be restored and how many dependencies each still waits on. */
function planRestore(id: string, descendants: string[], edges: PolicyEdge[], states: Map<string, string>): { order: string[]; pending: Map<string, number> } {
  const targets = new Set([id, ...descendants]);
  const byJob = new Map<string, PolicyEdge[]>();
  for (const e of edges) byJob.set(e.job_id, [...(byJob.get(e.job_id) ?? []), e]);
  const pending = new Map<string, number>();
  const order: string[] = [];
  const decided = new Set<string>();
  // Kahn's algorithm over the targets: decide a job once every target it depends on is decided.
  let progress = true;
  while (progress) {
    progress = false;
    for (const target of targets) {
      if (decided.has(target)) continue;
      const own = byJob.get(target) ?? [];
      if (own.some((e) => targets.has(e.depends_on_id) && !decided.has(e.depends_on_id) && e.depends_on_id !== target)) continue;
      decided.add(target);
      progress = true;
      let waiting = 0;
      const blocked: string[] = [];
      for (const e of own) {
        if (pending.has(e.depends_on_id)) waiting++;
        else {
          const state = states.get(e.depends_on_id) ?? (targets.has(e.depends_on_id) ? "cancelled" : "pruned from history");
          if (state === "live") waiting++;
          else if (state !== "completed" && e.on_failure !== "ignore") blocked.push(`${JSON.stringify(e.depends_on_id)} (${state})`);
        }
      }
      if (blocked.length > 0) {
        if (target === id) throw new InvalidJobStateError(id, `job ${JSON.stringify(id)} cannot run again: its dependencies ${blocked.join(", ")} will never complete; retry them first`);
        continue;
      }
      pending.set(target, waiting);
      order.push(target);
    }
  }
  return { order, pending };
}
