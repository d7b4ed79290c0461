import type { StatusSnapshot } from "../db/sql/status";
import type { Job, Task } from "../core/types";
import type { JobExplanation, RateLimit } from "../limits";

/** Seconds as a short human duration. */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "-";
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${Math.round(seconds % 60)}s`;
  return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`;
}

/** A plain text table with aligned columns. */
export function table(headers: string[], rows: string[][]): string {
  if (rows.length === 0) return "  (none)";
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => "  " + cells.map((c, i) => (c ?? "").padEnd(widths[i])).join("  ").trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

const clip = (text: string | null | undefined, n: number) => (text ?? "").replace(/\s+/g, " ").slice(0, n);

/** The `--status` report as text. */
export function formatStatus(s: StatusSnapshot, staleSeconds: number): string {
  const c = s.counts;
  return [
    `Skein status at ${s.generatedAt.toISOString()}`,
    "",
    `Workers (${s.workers.length}):`,
    table(
      ["id", "host", "pid", "slots", "state", "tenants", "last heartbeat"],
      s.workers.map((w) => [w.id, w.host, String(w.pid), String(w.concurrency), w.heartbeatAgeSeconds > staleSeconds ? "lost" : w.status, w.tenants?.join(",") ?? "all", `${duration(w.heartbeatAgeSeconds)} ago`]),
    ),
    "",
    `Paused queues: ${s.pausedQueues.length > 0 ? s.pausedQueues.join(", ") : "none"}`,
    "",
    `Jobs: ${c.pending} pending (${s.pending.ready} ready, ${s.pending.blockedOnDependencies} blocked on dependencies, ${s.pending.scheduled} scheduled later), ` +
      `${c.running} running, ${c.completed} completed, ${c.failed} failed, ${c.cancelled} cancelled`,
    "",
    "Running:",
    table(["id", "name", "worker", "age"], s.running.map((r) => [r.id, clip(r.name, 40), r.workerId ?? "-", duration(r.ageSeconds)])),
    "",
    "Waiting (why):",
    table(["id", "name", "why"], s.waiting.map((w) => [w.id, clip(w.name, 30), w.reason])),
    "",
    "Last failures:",
    table(["id", "name", "attempts", "error"], s.lastFailures.map((f) => [f.id, clip(f.name, 30), String(f.attempts), clip(f.errorMessage, 80)])),
  ].join("\n");
}

/** One job as readable lines. */
export function formatJob(job: Job): string {
  const fields: Array<[string, string]> = [
    ["id", job.id],
    ["name", job.name],
    ["type", job.jobType],
    ["status", job.status + (job.archived ? " (archived)" : "")],
    ["description", job.description ?? "-"],
    ["dependencies", job.dependencies.length ? job.dependencies.map((d) => (typeof d === "string" ? d : `${d.id} (on failure: ${d.onFailure ?? "cancel"})`)).join(", ") : "-"],
    ["parent", job.parentId === null ? "-" : `${job.parentId} (key ${job.delegationKey ?? "-"}${job.detached ? ", detached" : ""})`],
    ["children", job.childIds?.length ? job.childIds.join(", ") : "-"],
    ["schedule", job.scheduleName === null ? "-" : `${job.scheduleName} (tick ${job.scheduledFor?.toISOString() ?? "?"})`],
    ["waiting on", String(job.pendingDependencies)],
    ["priority", String(job.priority)],
    ["queue", job.queue],
    ["tenant", job.tenant ?? "-"],
    ["rate limit", job.rateLimitKey ? `${job.rateLimitKey} (cost ${job.rateLimitCost})` : "-"],
    ["concurrency", job.concurrencyKey ?? "-"],
    ["tags", job.tags.length ? job.tags.join(", ") : "-"],
    ["task", job.taskId ?? "-"],
    ["run at", job.runAt.toISOString()],
    ["attempts", `${job.attempts} (retries ${job.retryCount}/${job.maxRetries})`],
    ["worker", job.lockedBy ?? "-"],
    ["started", job.startedAt?.toISOString() ?? "-"],
    ["finished", job.completedAt?.toISOString() ?? "-"],
    ["duration", duration(job.durationSeconds)],
    ["error", job.errorMessage ?? "-"],
    ["payload", JSON.stringify(job.payload)],
    ["result", job.result === null ? "-" : JSON.stringify(job.result)],
  ];
  const width = Math.max(...fields.map(([k]) => k.length));
  return fields.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n");
}

/** Jobs as a table. */
export function formatJobs(jobs: Job[]): string {
  return table(
    ["id", "name", "type", "status", "priority", "attempts", "updated"],
    jobs.map((j) => [j.id, clip(j.name, 40), j.jobType, j.status, String(j.priority), String(j.attempts), (j.completedAt ?? j.updatedAt).toISOString()]),
  );
}

/** JSON output with dates as ISO strings. */
export function json(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

/** `skein explain` as text. */
export function formatExplanation(e: JobExplanation): string {
  if (e.reasons.length === 0) return `${e.id}: ${e.summary}`;
  return [`${e.id} is ${e.status}:`, ...e.reasons.map((r) => `  - ${r.message}`)].join("\n");
}

/** A task's progress as text. */
export function formatTask(t: Task): string {
  const c = t.counts;
  return [
    `task ${t.id} (${t.name}) for tenant ${t.tenant ?? "-"}: ${t.percentDone}% done${t.done ? " (finished)" : ""}`,
    `  ${t.totalJobs} jobs: ${c.pending} pending, ${c.running} running, ${c.completed} completed, ${c.failed} failed, ${c.cancelled} cancelled`,
    `  current step: ${t.currentStep === null ? "-" : JSON.stringify(t.currentStep)}`,
  ].join("\n");
}

/** Rate limits as a table. */
export function formatRateLimits(limits: RateLimit[]): string {
  return table(
    ["key", "rate", "burst", "tokens now", "paused until"],
    limits.map((l) => [l.key, l.perSecond === null ? "-" : `${+l.perSecond.toFixed(3)}/s`, String(+l.burst.toFixed(2)), l.tokens.toFixed(2), l.pausedUntil?.toISOString() ?? "-"]),
  );
}

/** A stored log line as text. */
export function formatLogLine(line: { at: Date; level: string; message: string; attempt: number; fields: Record<string, unknown> | null }): string {
  const fields = line.fields && Object.keys(line.fields).length > 0 ? ` ${JSON.stringify(line.fields)}` : "";
  return `${line.at.toISOString()} [attempt ${line.attempt}] ${line.level.padEnd(5)} ${line.message}${fields}`;
}

/** A job's events as a table. */
export function formatEvents(events: Array<{ at: Date; event: string; workerId: string | null; attempt: number | null; detail: Record<string, unknown> | null }>): string {
  return table(
    ["at", "event", "attempt", "worker", "detail"],
    events.map((e) => [e.at.toISOString(), e.event, e.attempt === null ? "-" : String(e.attempt), e.workerId ?? "-", e.detail ? clip(JSON.stringify(e.detail), 80) : ""]),
  );
}

/** A job's durable steps as a table. */
export function formatSteps(steps: Array<{ name: string; attempt: number; result: unknown; wakeAt: Date | null; createdAt: Date }>): string {
  if (steps.length === 0) return "no steps stored";
  return table(
    ["stored at", "step", "attempt", "result"],
    steps.map((s) => [s.createdAt.toISOString(), s.name, String(s.attempt), s.wakeAt ? `wakes at ${s.wakeAt.toISOString()}` : clip(JSON.stringify(s.result), 80)]),
  );
}

/** Schedules as a table. */
export function formatSchedules(list: Array<{ name: string; cron: string | null; intervalSeconds: number | null; timezone: string; paused: boolean; nextRunAt: Date; lastRunAt: Date | null; catchUp: string }>): string {
  return table(
    ["name", "when", "timezone", "state", "next run", "last run", "catch-up"],
    list.map((s) => [s.name, s.cron ?? `every ${s.intervalSeconds}s`, s.timezone, s.paused ? "paused" : "active", s.nextRunAt.toISOString(), s.lastRunAt?.toISOString() ?? "-", s.catchUp]),
  );
}
