import { deadLetters } from "../db/sql/graph";
import { toJob } from "../db/sql/rows";
import { InvalidJobStateError, ScheduleNotFoundError, ValidationError } from "../core/errors";
import { type CreateJobInput, type Job } from "../core/types";
import { checkText, LIMITS, normalizeJobInput } from "./validation";
import { retryInTransaction } from "./graph";
import { buildTimeline, type JobEvent } from "./events";
import { storedEvents } from "../db/sql/events";
import { advanceSchedule, deleteSchedule, insertSchedule, listSchedules, lockDueSchedules, recordTick, scheduleByName, setSchedulePaused } from "../db/sql/schedules";
import { planTicks, resolveSchedule, toSchedule, type CreateScheduleInput, type Schedule } from "../schedules";
import { readLogs } from "../db/sql/logs";
import { randomUUID } from "node:crypto";
import { checkLimit, checkSince } from "./manager-core";
import { FlowControlManager } from "./manager-flow";
export { type CancelOptions, type CreateJobOptions, type HistoryQuery, type JobManagerOptions, type ListQuery } from "./manager-core";

/** A stored log line of a job. */
export interface JobLogLine {
  /** Increasing id; pass the last one as `after` to follow. */
  id: string;
  attempt: number;
  at: Date;
  level: string;
  message: string;
  fields: Record<string, unknown> | null;
}

/**
 * Creates, reads and steers jobs. Jobs wait on other jobs (a DAG): a job is
 * ready once every dependency has finished as its edge requires (completed,
 * or failed with an `ignore` policy), and is cancelled (or failed) as soon as
 * one fails or is cancelled. All writes are atomic.
 *
 * The methods come in layers, one file each: creating, reading, cancelling
 * and retrying ({@link JobManagerCore}); flow control and tasks
 * ({@link FlowControlManager}); and here schedules, the dead-letter queue,
 * events and logs.
 */
export class JobManager extends FlowControlManager {
  /**
   * Every state change of a job (created, ready, started, retried, completed,
   * failed, cancelled, lease lost, released, rate limited) with its time and
   * worker, oldest first; kept after the job is archived. `null` if unknown.
   */
  async getJobEvents(id: string): Promise<JobEvent[] | null> {
    const job = await this.getJob(id);
    if (!job) return null;
    return buildTimeline(job, await storedEvents(this.db, id));
  }

  /** Lines the job's executors wrote with `ctx.log`, oldest first, after the line with id `after` (for following). */
  async getJobLogs(id: string, options: { after?: string; limit?: number } = {}): Promise<JobLogLine[]> {
    const after = options.after === undefined ? null : options.after;
    if (after !== null && !/^\d{1,18}$/.test(after)) throw new ValidationError("after", "must be a log line id");
    const rows = await readLogs(this.db, checkText(id, "id", LIMITS.idLength, false), after, checkLimit(options.limit ?? 1000));
    return rows.map((r) => ({ id: r.id, attempt: r.attempt, at: r.at, level: r.level, message: r.message, fields: r.fields }));
  }

  /**
   * Creates a recurring schedule: every tick (a cron expression in a
   * timezone, or every `intervalSeconds`) enqueues one job from
   * `jobTemplate`, exactly once however many workers run. Workers run the
   * scheduler; see {@link JobManager.runDueSchedules}.
   */
  async createSchedule(input: CreateScheduleInput, options: { now?: Date } = {}): Promise<Schedule> {
    const name = checkText(input?.name, "name", LIMITS.nameLength, false);
    const resolved = resolveSchedule(input, options.now ?? new Date());
    const template = checkTemplate(input.jobTemplate, name);
    const row = await insertSchedule(this.db, {
      id: randomUUID(),
      name,
      cron: resolved.cron,
      interval_seconds: resolved.intervalSeconds,
      timezone: resolved.timezone,
      job_template: template,
      catch_up: resolved.catchUp,
      next_run_at: resolved.firstRunAt,
    });
    if (!row) throw new ValidationError("name", `a schedule named ${JSON.stringify(name)} already exists`);
    return toSchedule(row);
  }

  /** Every schedule, by name. */
  async listSchedules(): Promise<Schedule[]> {
    return (await listSchedules(this.db)).map(toSchedule);
  }

  /** Stops a schedule's ticks until it is resumed. */
  async pauseSchedule(name: string): Promise<Schedule> {
    const row = await setSchedulePaused(this.db, checkText(name, "name", LIMITS.nameLength, false), true, null);
    if (!row) throw new ScheduleNotFoundError(name);
    return toSchedule(row);
  }

  /** Resumes a paused schedule from its next tick after now (ticks during the pause are not made up). */
  async resumeSchedule(name: string, options: { now?: Date } = {}): Promise<Schedule> {
    const existing = await scheduleByName(this.db, checkText(name, "name", LIMITS.nameLength, false));
    if (!existing) throw new ScheduleNotFoundError(name);
    const now = options.now ?? new Date();
    const next = existing.next_run_at > now ? existing.next_run_at : planTicks(existing, now).next;
    return toSchedule((await setSchedulePaused(this.db, name, false, next)) as NonNullable<Awaited<ReturnType<typeof setSchedulePaused>>>);
  }

  /** Deletes a schedule (jobs it already created are untouched); returns whether it existed. */
  async deleteSchedule(name: string): Promise<boolean> {
    return deleteSchedule(this.db, checkText(name, "name", LIMITS.nameLength, false));
  }

  /**
   * Enqueues the jobs of every schedule whose tick has come, once per tick:
   * the schedule's row is locked (other schedulers skip it) and the tick is
   * recorded under a unique key in the same transaction as its job. Ticks
   * missed while nothing ran follow the schedule's `catchUp` policy. Workers
   * call this every second; tests call it with their own `now`.
   */
  async runDueSchedules(options: { now?: Date } = {}): Promise<Array<{ schedule: string; tickAt: Date; jobId: string }>> {
    const now = options.now ?? new Date();
    const { fired, ready } = await this.retryDeadlocks(false, () =>
      this.db.transaction(async (sql) => {
        const out: Array<{ schedule: string; tickAt: Date; jobId: string }> = [];
        let anyReady = false;
        for (const row of await lockDueSchedules(sql, now, 100)) {
          const plan = planTicks(row, now);
          let ran: { at: Date; jobId: string } | null = null;
          if (plan.fire) {
            const job = normalizeJobInput({ ...(row.job_template as unknown as CreateJobInput) });
            if (await recordTick(sql, row.id, plan.fire, job.id)) {
              anyReady = (await this.writeJobs(sql, [job])).ready || anyReady;
              ran = { at: plan.fire, jobId: job.id };
              out.push({ schedule: row.name, tickAt: plan.fire, jobId: job.id });
            }
          }
          await advanceSchedule(sql, row.id, plan.next, ran);
        }
        return { fired: out, ready: anyReady };
      }),
    );
    if (ready) this.notifier.poke();
    return fired;
  }

  /** Finally failed jobs (the dead-letter queue), most recent first. */
  async listDeadLetters(options: { since?: Date | string; limit?: number } = {}): Promise<Job[]> {
    const since = options.since === undefined ? undefined : checkSince(options.since);
    return (await deadLetters(this.db, { since, limit: checkLimit(options.limit) })).map(toJob);
  }

  /**
   * Replays finally failed jobs (`retryJob(id, { downstream: true })` each):
   * the given `ids`, those failed `since` a time, or `all`. A job whose own
   * dependencies can never complete is skipped with the reason.
   */
  async replayDeadLetters(options: { ids?: string[]; since?: Date | string; all?: boolean }): Promise<{ replayed: string[]; restored: number; skipped: Array<{ id: string; reason: string }> }> {
    const chosen = [options.ids !== undefined, options.since !== undefined, options.all === true].filter(Boolean).length;
    if (chosen !== 1) throw new ValidationError("replay", "give exactly one of ids, since or all");
    const ids = options.ids?.map((id, i) => checkText(id, `ids[${i}]`, LIMITS.idLength, false));
    const since = options.since === undefined ? undefined : checkSince(options.since);
    const failed = await deadLetters(this.db, { ids, since, limit: 100_000 });
    const replayed: string[] = [];
    const skipped: Array<{ id: string; reason: string }> = [];
    let restored = 0;
    for (const row of failed.reverse()) {
      try {
        const rows = await this.retryDeadlocks(false, () => this.db.transaction((sql) => retryInTransaction(sql, row.id, { downstream: true })));
        replayed.push(row.id);
        restored += rows.length;
      } catch (error) {
        if (!(error instanceof InvalidJobStateError)) throw error;
        skipped.push({ id: row.id, reason: error.message });
      }
    }
    for (const id of ids ?? []) if (!failed.some((r) => r.id === id)) skipped.push({ id, reason: `job ${JSON.stringify(id)} is not a failed job in history` });
    if (replayed.length > 0) this.notifier.poke();
    this.wroteJobs(restored);
    return { replayed, restored, skipped };
  }
}

/** Validates a schedule's job template (as `createJob` would), without id or dependencies. */
function checkTemplate(template: unknown, name: string): Record<string, unknown> {
  if (typeof template !== "object" || template === null || Array.isArray(template)) throw new ValidationError("jobTemplate", "must be a job description object");
  const t = template as Record<string, unknown>;
  if (t.id !== undefined) throw new ValidationError("jobTemplate.id", "is chosen for each tick; leave it out");
  if (t.dependencies !== undefined) throw new ValidationError("jobTemplate.dependencies", "scheduled jobs cannot depend on other jobs");
  const withName = { name, ...t } as unknown as CreateJobInput;
  normalizeJobInput(withName, "jobTemplate.");
  return withName as unknown as Record<string, unknown>;
}

