import type { Sql } from "../database";

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

const COLUMNS = `id, name, cron, interval_seconds, timezone, job_template, catch_up, paused, next_run_at, last_run_at, last_job_id, created_at, updated_at`;

/** Inserts a schedule; returns undefined when the name is taken. */
export async function insertSchedule(sql: Sql, s: Omit<ScheduleRow, "paused" | "last_run_at" | "last_job_id" | "created_at" | "updated_at">): Promise<ScheduleRow | undefined> {
  const rows = await sql.query<ScheduleRow>(
    `INSERT INTO schedules (id, name, cron, interval_seconds, timezone, job_template, catch_up, next_run_at)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)
     ON CONFLICT (name) DO NOTHING
     RETURNING ${COLUMNS}`,
    [s.id, s.name, s.cron, s.interval_seconds, s.timezone, JSON.stringify(s.job_template), s.catch_up, s.next_run_at],
  );
  return rows[0];
}

/** Every schedule, by name. */
export function listSchedules(sql: Sql): Promise<ScheduleRow[]> {
  return sql.query<ScheduleRow>(`SELECT ${COLUMNS} FROM schedules ORDER BY name`);
}

/** One schedule by name. */
export async function scheduleByName(sql: Sql, name: string): Promise<ScheduleRow | undefined> {
  return (await sql.query<ScheduleRow>(`SELECT ${COLUMNS} FROM schedules WHERE name = $1`, [name]))[0];
}

/** Pauses or resumes (a resumed schedule fires next at `nextRunAt`). */
export async function setSchedulePaused(sql: Sql, name: string, paused: boolean, nextRunAt: Date | null): Promise<ScheduleRow | undefined> {
  const rows = await sql.query<ScheduleRow>(
    `UPDATE schedules SET paused = $2, next_run_at = COALESCE($3, next_run_at), updated_at = clock_timestamp()
     WHERE name = $1 RETURNING ${COLUMNS}`,
    [name, paused, nextRunAt],
  );
  return rows[0];
}

/** Deletes a schedule and its tick records; returns whether it existed. */
export async function deleteSchedule(sql: Sql, name: string): Promise<boolean> {
  const rows = await sql.query<{ id: string }>(
    `WITH s AS (DELETE FROM schedules WHERE name = $1 RETURNING id),
     t AS (DELETE FROM schedule_ticks WHERE schedule_id IN (SELECT id FROM s))
     SELECT id FROM s`,
    [name],
  );
  return rows.length > 0;
}

/** Locks due schedules (others' schedulers skip them). */
export function lockDueSchedules(sql: Sql, now: Date, limit: number): Promise<ScheduleRow[]> {
  return sql.query<ScheduleRow>(
    `SELECT ${COLUMNS} FROM schedules WHERE NOT paused AND next_run_at <= $1
     ORDER BY next_run_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
    [now, limit],
  );
}

/** Records a tick; false if it was already recorded (its job exists). */
export async function recordTick(sql: Sql, scheduleId: string, tickAt: Date, jobId: string): Promise<boolean> {
  const rows = await sql.query<{ schedule_id: string }>(
    `INSERT INTO schedule_ticks (schedule_id, tick_at, job_id) VALUES ($1, $2, $3)
     ON CONFLICT DO NOTHING RETURNING schedule_id`,
    [scheduleId, tickAt, jobId],
  );
  return rows.length > 0;
}

/** Moves a schedule to its next tick. */
export async function advanceSchedule(sql: Sql, id: string, nextRunAt: Date, ran: { at: Date; jobId: string } | null): Promise<void> {
  await sql.query(
    `UPDATE schedules SET next_run_at = $2, last_run_at = COALESCE($3, last_run_at), last_job_id = COALESCE($4, last_job_id),
       updated_at = clock_timestamp() WHERE id = $1`,
    [id, nextRunAt, ran?.at ?? null, ran?.jobId ?? null],
  );
}
