import { DependencyCycleError, DuplicateJobIdError } from "../core/errors";
import type { NormalizedJob } from "./validation";

/**
 * The dependency rules decided when jobs are created:
 * - ids are unique within a call; a job may not depend on itself;
 * - jobs of one call may depend on each other, but not in a cycle (jobs that
 *   already exist cannot depend on new ones, so no cycle can pass through them);
 * - a job whose dependency has already failed or been cancelled is created
 *   ended, by the edge's failure policy: `cancel` (the default) creates it
 *   cancelled, `fail` creates it failed, `ignore` counts the dependency as
 *   finished; transitively through the dependents in the same call.
 */

/** Where a dependency stands when the new jobs are written. */
export type DependencyState = "live" | "completed" | "failed" | "cancelled";

/** The plan for one new job. */
export interface JobPlan {
  job: NormalizedJob;
  /** Dependencies that have not completed yet. */
  pendingDependencies: number;
  /** Set when the job is created already ended: as what, and the dependency that caused it. */
  endedBy?: { id: string; status: "failed" | "cancelled"; outcome: "failed" | "cancelled" };
}

/**
 * Checks ids and cycles within a batch and returns the jobs in dependency
 * order (each after the batch jobs it depends on). Throws the typed errors.
 */
export function orderBatch(jobs: readonly NormalizedJob[]): NormalizedJob[] {
  const byId = new Map<string, NormalizedJob>();
  const duplicates = new Set<string>();
  for (const job of jobs) {
    if (byId.has(job.id)) duplicates.add(job.id);
    byId.set(job.id, job);
  }
  if (duplicates.size > 0) throw new DuplicateJobIdError([...duplicates]);
  for (const job of jobs) {
    if (job.dependencyIds.includes(job.id)) throw new DependencyCycleError([job.id, job.id]);
  }
  // Iterative depth-first search: a 0 = unvisited, 1 = on the stack, 2 = done.
  const state = new Map<string, 0 | 1 | 2>();
  const ordered: NormalizedJob[] = [];
  for (const start of jobs) {
    if (state.get(start.id)) continue;
    const stack: Array<{ job: NormalizedJob; next: number }> = [{ job: start, next: 0 }];
    state.set(start.id, 1);
    while (stack.length > 0) {
      const frame = stack[stack.length - 1];
      const depId = frame.job.dependencyIds[frame.next++];
      if (depId === undefined) {
        state.set(frame.job.id, 2);
        ordered.push(frame.job);
        stack.pop();
        continue;
      }
      const dep = byId.get(depId);
      if (!dep) continue; // an existing job, checked against the database
      const seen = state.get(depId) ?? 0;
      if (seen === 1) {
        const from = stack.findIndex((f) => f.job.id === depId);
        throw new DependencyCycleError([...stack.slice(from).map((f) => f.job.id), depId]);
      }
      if (seen === 0) {
        state.set(depId, 1);
        stack.push({ job: dep, next: 0 });
      }
    }
  }
  return ordered;
}

/**
 * Decides each new job's starting state from where its dependencies stand.
 * `ordered` must come from {@link orderBatch}; `external` holds the state of
 * every dependency outside the batch.
 */
export function planJobs(ordered: readonly NormalizedJob[], external: ReadonlyMap<string, DependencyState>): JobPlan[] {
  const plans = new Map<string, JobPlan>();
  for (const job of ordered) {
    let pending = 0;
    let endedBy: JobPlan["endedBy"];
    for (const depId of job.dependencyIds) {
      const inBatch = plans.get(depId);
      const state: DependencyState | undefined = inBatch ? (inBatch.endedBy?.outcome ?? "live") : external.get(depId);
      if (state === "live") {
        pending++;
        continue;
      }
      if (state !== "failed" && state !== "cancelled") continue; // completed
      const policy = job.policies.get(depId) ?? "cancel";
      if (policy === "ignore") continue;
      const outcome = policy === "fail" ? "failed" : "cancelled";
      // The strongest outcome wins: failed over cancelled.
      if (!endedBy || (outcome === "failed" && endedBy.outcome === "cancelled")) endedBy = { id: depId, status: state, outcome };
    }
    plans.set(job.id, { job, pendingDependencies: endedBy ? 0 : pending, endedBy });
  }
  return [...plans.values()];
}
