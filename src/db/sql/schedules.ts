import type { Sql } from "../database";
import { sql, statement, T } from "./template";

/** A schedule row. */
export interface ScheduleRow {
  id: string;
  name: string;
  cron: string | null;
  interval_seconds: number | null;
  timezone: string;
  job_template: Record<string, unknown>;
  catch_up: "once" | "skip";
  paused: boolean;
  next_run_at: Date;
  last_run_at: Date | null;
  last_job_id: string | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = sql`id, name, cron, interval_seconds, timezone, job_template, catch_up, paused, next_run_at, last_run_at, last_job_id, created_at, updated_at`;

type NewSchedule = Omit<ScheduleRow, "paused" | "last_run_at" | "last_job_id" | "created_at" | "updated_at" | "job_template"> & { job_template: string };

const insertStatement = statement<NewSchedule, ScheduleRow>(
  (p) => sql`INSERT INTO ${T.schedules} (id, name, cron, interval_seconds, timezone, job_template, catch_up, next_run_at)
     VALUES (${p.id}, ${p.name}, ${p.cron}, ${p.interval_seconds}, ${p.timezone}, ${p.job_template}::jsonb, ${p.catch_up}, ${p.next_run_at})
     ON CONFLICT (name) DO NOTHING
     RETURNING ${COLUMNS}`,
);

/** Inserts a schedule; returns undefined when the name is taken. */
export function insertSchedule(db: Sql, s: Omit<ScheduleRow, "paused" | "last_run_at" | "last_job_id" | "created_at" | "updated_at">): Promise<ScheduleRow | undefined> {
  return insertStatement.one(db, { ...s, job_template: JSON.stringify(s.job_template) });
}

const listStatement = statement<Record<string, never>, ScheduleRow>(() => sql`SELECT ${COLUMNS} FROM ${T.schedules} ORDER BY name`);

/** Every schedule, by name. */
export function listSchedules(db: Sql): Promise<ScheduleRow[]> {
  return listStatement.all(db, {});
}

const byNameStatement = statement<{ name: string }, ScheduleRow>((p) => sql`SELECT ${COLUMNS} FROM ${T.schedules} WHERE name = ${p.name}`);

/** One schedule by name. */
export function scheduleByName(db: Sql, name: string): Promise<ScheduleRow | undefined> {
  return byNameStatement.one(db, { name });
}

const setPausedStatement = statement<{ name: string; paused: boolean; next: Date | null }, ScheduleRow>(
  (p) => sql`UPDATE ${T.schedules} SET paused = ${p.paused}, next_run_at = COALESCE(${p.next}, next_run_at), updated_at = clock_timestamp()
     WHERE name = ${p.name} RETURNING ${COLUMNS}`,
);

/** Pauses or resumes (a resumed schedule fires next at `nextRunAt`). */
export function setSchedulePaused(db: Sql, name: string, paused: boolean, nextRunAt: Date | null): Promise<ScheduleRow | undefined> {
  return setPausedStatement.one(db, { name, paused, next: nextRunAt });
}

const deleteStatement = statement<{ name: string }, { id: string }>(
  (p) => sql`WITH s AS (DELETE FROM ${T.schedules} WHERE name = ${p.name} RETURNING id),
     t AS (DELETE FROM ${T.schedule_ticks} WHERE schedule_id IN (SELECT id FROM s))
     SELECT id FROM s`,
);

/** Deletes a schedule and its tick records; returns whether it existed. */
export async function deleteSchedule(db: Sql, name: string): Promise<boolean> {
  return (await deleteStatement.all(db, { name })).length > 0;
}

const lockDueStatement = statement<{ now: Date; limit: number }, ScheduleRow>(
  (p) => sql`SELECT ${COLUMNS} FROM ${T.schedules} WHERE NOT paused AND next_run_at <= ${p.now}
     ORDER BY next_run_at LIMIT ${p.limit} FOR UPDATE SKIP LOCKED`,
);

/** Locks due schedules (others' schedulers skip them). */
export function lockDueSchedules(db: Sql, now: Date, limit: number): Promise<ScheduleRow[]> {
  return lockDueStatement.all(db, { now, limit });
}

const recordTickStatement = statement<{ scheduleId: string; tickAt: Date; jobId: string }, { schedule_id: string }>(
  (p) => sql`INSERT INTO ${T.schedule_ticks} (schedule_id, tick_at, job_id) VALUES (${p.scheduleId}, ${p.tickAt}, ${p.jobId})
     ON CONFLICT DO NOTHING RETURNING schedule_id`,
);

/** Records a tick; false if it was already recorded (its job exists). */
export async function recordTick(db: Sql, scheduleId: string, tickAt: Date, jobId: string): Promise<boolean> {
  return (await recordTickStatement.all(db, { scheduleId, tickAt, jobId })).length > 0;
}

const advanceStatement = statement<{ id: string; next: Date; ranAt: Date | null; jobId: string | null }, never>(
  (p) => sql`UPDATE ${T.schedules} SET next_run_at = ${p.next}, last_run_at = COALESCE(${p.ranAt}, last_run_at),
       last_job_id = COALESCE(${p.jobId}, last_job_id), updated_at = clock_timestamp() WHERE id = ${p.id}`,
);

/** Moves a schedule to its next tick. */
export async function advanceSchedule(db: Sql, id: string, nextRunAt: Date, ran: { at: Date; jobId: string } | null): Promise<void> {
  await advanceStatement.all(db, { id, next: nextRunAt, ranAt: ran?.at ?? null, jobId: ran?.jobId ?? null });
}
