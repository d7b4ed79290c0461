import type { EventRow } from "../db/sql/events";
import type { Job } from "../core/types";

/** Kinds of job event. */
export type JobEventType =
  | "created"
  | "ready"
  | "started"
  | "retried"
  | "completed"
  | "failed"
  | "cancelled"
  | "lease_lost"
  | "released"
  | "rate_limited"
  /** The attempt ended parked: waiting for delegated children, or sleeping (`detail`: waitingFor, until, deadline). */
  | "parked"
  /** A durable step (or a sleep) was stored (`detail.name`). */
  | "step";

/** One state change of a job. */
export interface JobEvent {
  at: Date;
  event: JobEventType;
  /** The worker involved (the one that ran the attempt), if any. */
  workerId: string | null;
  /** The attempt it concerns, if any. */
  attempt: number | null;
  detail: Record<string, unknown> | null;
}

/** Stored events that end an attempt (each implies that the attempt started). */
const ENDS_ATTEMPT = new Set(["retried", "lease_lost", "released", "rate_limited", "parked", "failed", "cancelled"]);

/**
 * A job's full timeline. Created, ready, the latest start and the final
 * outcome come from the job's own row; earlier attempts (retried, lease lost,
 * released, rate limited, or ended before a manual retry) from stored events,
 * each preceded by its start. Pure: easy to read and to test.
 */
export function buildTimeline(job: Job, stored: readonly EventRow[]): JobEvent[] {
  const events: JobEvent[] = [{ at: job.createdAt, event: "created", workerId: null, attempt: null, detail: null }];
  const ready = job.readyAt ?? (job.dependencies.length === 0 && job.attempts > 0 ? job.createdAt : null);
  if (ready) events.push({ at: ready, event: "ready", workerId: null, attempt: null, detail: null });
  const endedAttempts = new Set<number>();
  for (const row of stored) {
    const startedAt = typeof row.detail?.startedAt === "string" ? new Date(row.detail.startedAt) : null;
    if (ENDS_ATTEMPT.has(row.event) && startedAt && row.attempt !== null) {
      endedAttempts.add(row.attempt);
      events.push({ at: startedAt, event: "started", workerId: row.worker_id, attempt: row.attempt, detail: null });
    }
    events.push({ at: row.at, event: row.event as JobEventType, workerId: row.worker_id, attempt: row.attempt, detail: row.detail });
  }
  if (job.startedAt && !endedAttempts.has(job.attempts)) {
    events.push({ at: job.startedAt, event: "started", workerId: job.lockedBy, attempt: job.attempts, detail: null });
  }
  if (job.archived && job.completedAt) {
    const detail = job.errorMessage ? { error: job.errorMessage } : null;
    events.push({ at: job.completedAt, event: job.status as JobEventType, workerId: job.startedAt ? job.lockedBy : null, attempt: job.startedAt ? job.attempts : null, detail });
  }
  return events.sort((a, b) => a.at.getTime() - b.at.getTime());
}
