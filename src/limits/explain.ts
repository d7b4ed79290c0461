import type { ExplainRow } from "../db/sql/limits";

/** One reason a job is not running. */
export interface WaitReason {
  /** Machine-readable kind. */
  code: "queue_paused" | "dependencies" | "children" | "sleeping" | "scheduled" | "rate_limit_paused" | "rate_limited" | "concurrency" | "no_worker" | "queued";
  message: string;
}

/** Why a job is (not) running, from `JobManager.explain`. */
export interface JobExplanation {
  id: string;
  status: string;
  /** For a pending job: every reason it is not running now, most fundamental first. */
  reasons: WaitReason[];
  /** One line for people. */
  summary: string;
}

const ms = (value: number) => `${Math.max(0, Math.ceil(value))} ms`;
const listed = (jobs: ReadonlyArray<{ id: string; name: string; status: string }>) =>
  jobs
    .slice(0, 10)
    .map((d) => `${d.id} (${JSON.stringify(d.name)}, ${d.status})`)
    .join(", ") + (jobs.length > 10 ? `, and ${jobs.length - 10} more` : "");

/** Turns the facts about a live job into reasons. Pure, so each rule is easy to test and read. */
export function explainFromFacts(facts: ExplainRow): JobExplanation {
  if (facts.status === "running") {
    const since = facts.started_at ? ` since ${facts.started_at.toISOString()}` : "";
    return { id: facts.id, status: facts.status, reasons: [], summary: `running on worker ${facts.locked_by ?? "?"}${since}` };
  }
  const reasons: WaitReason[] = [];
  if (facts.queue_paused) reasons.push({ code: "queue_paused", message: `queue ${JSON.stringify(facts.queue)} is paused (resumeQueue, or skein queues resume ${facts.queue})` });
  const waiting = facts.waiting_on ?? [];
  const children = waiting.filter((d) => d.edge === "wait");
  const dependencies = waiting.filter((d) => d.edge !== "wait");
  if (dependencies.length > 0) {
    reasons.push({ code: "dependencies", message: `waiting on ${dependencies.length} dependenc${dependencies.length === 1 ? "y" : "ies"}: ${listed(dependencies)}` });
  }
  if (children.length > 0) {
    const until = facts.wait_until ? ` (they are cancelled at ${facts.wait_until.toISOString()})` : "";
    reasons.push({ code: "children", message: `parked until ${children.length} delegated job${children.length === 1 ? "" : "s"} end${children.length === 1 ? "s" : ""}: ${listed(children)}${until}` });
  }
  if (facts.run_in_ms > 0) {
    reasons.push(facts.sleeping ? { code: "sleeping", message: `sleeping (ctx.sleep) for ${ms(facts.run_in_ms)} more` } : { code: "scheduled", message: `runAt is in the future (in ${ms(facts.run_in_ms)})` });
  }
  if (facts.rate_limit_key !== null && facts.paused_ms !== null && facts.paused_ms > 0) {
    reasons.push({ code: "rate_limit_paused", message: `rate limit of key ${JSON.stringify(facts.rate_limit_key)} is paused by the provider (for ${ms(facts.paused_ms)})` });
  } else if (facts.rate_limit_key !== null && facts.rate_per_second !== null && facts.tokens !== null && facts.burst !== null) {
    const needed = Math.min(facts.rate_limit_cost, facts.burst);
    if (facts.tokens < needed) {
      const wait = ((needed - facts.tokens) / facts.rate_per_second) * 1000;
      reasons.push({ code: "rate_limited", message: `rate limit of key ${JSON.stringify(facts.rate_limit_key)} (next token in ${ms(wait)})` });
    }
  }
  if (facts.concurrency_key !== null && facts.max_running !== null && facts.running_with_key >= facts.max_running) {
    reasons.push({ code: "concurrency", message: `concurrency key ${JSON.stringify(facts.concurrency_key)} is full (${facts.running_with_key}/${facts.max_running} running)` });
  }
  if (facts.serving_workers === 0) {
    const what = `queue ${JSON.stringify(facts.queue)}${facts.tags.length > 0 ? ` with tags [${facts.tags.join(", ")}]` : ""}`;
    const message =
      facts.live_workers === 0
        ? `no live worker (none serves ${what})`
        : facts.serving_any_tenant > 0
          ? `no live worker serves tenant ${facts.tenant === null ? "(none)" : JSON.stringify(facts.tenant)}: the workers of ${what} serve only other tenants`
          : `no live worker serves ${what} (or those that do are quiet or draining)`;
    reasons.push({ code: "no_worker", message });
  }
  if (reasons.length === 0) {
    reasons.push({ code: "queued", message: facts.ahead > 0 ? `queued behind ${facts.ahead} ready job${facts.ahead === 1 ? "" : "s"}` : "ready: next in line for a free worker slot" });
  }
  return { id: facts.id, status: facts.status, reasons, summary: reasons.map((r) => r.message).join("; ") };
}
