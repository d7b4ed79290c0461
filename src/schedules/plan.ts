import type { ScheduleRow } from "../db/sql/schedules";
import { ValidationError } from "../core/errors";
import type { CreateJobInput } from "../core/types";
import { checkCron, checkTimezone, nextTick } from "./next";



/**
 * What to do with ticks that passed while no worker ran the scheduler:
 * `once` enqueues one job for the latest missed tick, `skip` enqueues nothing
 * for a tick more than `misfireGraceSeconds` late.
 */
export type CatchUpPolicy = "once" | "skip";

/** The input of `JobManager.createSchedule`: exactly one of `cron` or `intervalSeconds`. */
export interface CreateScheduleInput {
  /** Unique name; the schedule's handle for pause, resume and delete. */
  name: string;
  /** A cron expression (5 fields, or 6 with seconds), e.g. "*\/5 * * * *". */
  cron?: string;
  /** Seconds between ticks. */
  intervalSeconds?: number;
  /** IANA timezone the cron expression is read in. @defaultValue "UTC" */
  timezone?: string;
  /** The job each tick creates: any `createJob` input without `id` and `dependencies`; `name` defaults to the schedule's. */
  jobTemplate: Omit<CreateJobInput, "id" | "dependencies" | "name"> & { name?: string };
  /** @defaultValue "once" */
  catchUp?: CatchUpPolicy;
  /** First tick no earlier than this. @defaultValue now */
  startAt?: Date;
}

/** A stored schedule. */
export interface Schedule {
  id: string;
  name: string;
  cron: string | null;
  intervalSeconds: number | null;
  timezone: string;
  jobTemplate: Record<string, unknown>;
  catchUp: CatchUpPolicy;
  paused: boolean;
  /** When the next tick is due. */
  nextRunAt: Date;
  lastRunAt: Date | null;
  lastJobId: string | null;
  createdAt: Date;
}

/** How late a tick may run under the `skip` policy. */
export const MISFIRE_GRACE_SECONDS = 60;

/** Validates the input into the schedule's fields (the template is validated by the caller). */
export function resolveSchedule(input: CreateScheduleInput, now: Date): { cron: string | null; intervalSeconds: number | null; timezone: string; catchUp: CatchUpPolicy; firstRunAt: Date } {
  if (typeof input !== "object" || input === null) throw new ValidationError("schedule", "must be an object");
  if ((input.cron === undefined) === (input.intervalSeconds === undefined)) throw new ValidationError("schedule", "give exactly one of cron or intervalSeconds");
  const timezone = checkTimezone(input.timezone ?? "UTC");
  const cron = input.cron === undefined ? null : checkCron(input.cron, timezone);
  const intervalSeconds = input.intervalSeconds === undefined ? null : input.intervalSeconds;
  if (intervalSeconds !== null && (!Number.isInteger(intervalSeconds) || intervalSeconds < 1 || intervalSeconds > 366 * 86400)) {
    throw new ValidationError("intervalSeconds", `must be an integer from 1 to ${366 * 86400} (got ${String(intervalSeconds)})`);
  }
  const catchUp = input.catchUp ?? "once";
  if (catchUp !== "once" && catchUp !== "skip") throw new ValidationError("catchUp", `must be "once" or "skip" (got ${JSON.stringify(catchUp)})`);
  if (input.startAt !== undefined && (!(input.startAt instanceof Date) || Number.isNaN(input.startAt.getTime()))) throw new ValidationError("startAt", "must be a valid Date");
  const from = input.startAt && input.startAt > now ? input.startAt : now;
  const firstRunAt = cron !== null ? nextTick({ cron, intervalSeconds: null, timezone }, from, new Date(from.getTime() - 1)) : new Date(from.getTime() + (intervalSeconds as number) * 1000);
  return { cron, intervalSeconds, timezone, catchUp, firstRunAt };
}

/** Windows searched backwards for the latest due tick: a tick older than the largest is not worth finding. */
const LOOKBACK_MS = [60_000, 3_600_000, 86_400_000, 31 * 86_400_000, 400 * 86_400_000];

/**
 * For a due schedule at `now`: the tick to fire (the latest one due, unless
 * the `skip` policy drops it as too late) and the next tick after `now`.
 */
export function planTicks(row: ScheduleRow, now: Date): { fire: Date | null; next: Date } {
  const spec = { cron: row.cron, intervalSeconds: row.interval_seconds, timezone: row.timezone };
  const latest = latestDueTick(spec, row.next_run_at, now);
  const next = nextTick(spec, latest, now);
  const late = now.getTime() - latest.getTime();
  const fire = row.catch_up === "skip" && late > MISFIRE_GRACE_SECONDS * 1000 ? null : latest;
  return { fire, next };
}

function latestDueTick(spec: { cron: string | null; intervalSeconds: number | null; timezone: string }, firstDue: Date, now: Date): Date {
  if (spec.cron === null) {
    const step = (spec.intervalSeconds as number) * 1000;
    return new Date(firstDue.getTime() + Math.floor((now.getTime() - firstDue.getTime()) / step) * step);
  }
  for (const window of LOOKBACK_MS) {
    const from = new Date(Math.max(firstDue.getTime() - 1, now.getTime() - window));
    let tick = nextTick(spec, firstDue, from);
    if (tick > now) continue;
    for (let i = 0; i < 100_000; i++) {
      const after = nextTick(spec, firstDue, tick);
      if (after > now) return tick;
      tick = after;
    }
    return tick;
  }
  return firstDue;
}

/** A row as the public shape. */
export function toSchedule(row: ScheduleRow): Schedule {
  return {
    id: row.id,
    name: row.name,
    cron: row.cron,
    intervalSeconds: row.interval_seconds,
    timezone: row.timezone,
    jobTemplate: row.job_template,
    catchUp: row.catch_up,
    paused: row.paused,
    nextRunAt: row.next_run_at,
    lastRunAt: row.last_run_at,
    lastJobId: row.last_job_id,
    createdAt: row.created_at,
  };
}
