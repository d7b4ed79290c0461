import { checkText, LIMITS } from "../core/checks";
import type { Clock } from "../core/clock";
import { ScheduleNotFoundError, ValidationError } from "../core/errors";
import { newJobId } from "../core/ids";
import type { Database, Sql } from "../db/database";
import type { ReadyNotifier } from "../db/notifier";
import { advanceSchedule, deleteSchedule, insertSchedule, listSchedules, lockDueSchedules, recordTick, scheduleByName, setSchedulePaused, type ScheduleRow } from "../db/sql/schedules";
import { retryTransient } from "../db/store";
import { planTicks, resolveSchedule, toSchedule, type CreateScheduleInput, type Schedule } from "./plan";

/** One tick that made a job. */
export interface FiredTick {
  schedule: string;
  tickAt: Date;
  jobId: string;
}

/**
 * What the scheduler needs from job creation, which lives above it (in
 * `jobs/`): `JobManager` implements it. Keeps the arrow one way.
 */
export interface ScheduledJobs {
  /** Validates a template as `createJob` would (fields named `jobTemplate.*`) and returns it with its name. */
  checkTemplate(template: unknown, scheduleName: string): Record<string, unknown>;
  /** Writes the job of one tick, with the given id, inside the transaction `sql`; says whether it is ready now. */
  writeTick(sql: Sql, template: Record<string, unknown>, tick: { jobId: string; scheduleName: string; tickAt: Date }): Promise<{ ready: boolean }>;
}

/** Recurring schedules: their administration, and the scheduler's run-once function. */
export class ScheduleService {
  constructor(
    private readonly ctx: { db: Database; clock: Clock; notifier: ReadyNotifier },
    private readonly jobs: ScheduledJobs,
  ) {}

  /** See `JobManager.createSchedule`. */
  async createSchedule(input: CreateScheduleInput, options: { now?: Date } = {}): Promise<Schedule> {
    const name = checkText(input?.name, "name", LIMITS.nameLength, false);
    const resolved = resolveSchedule(input, options.now ?? this.now());
    const template = this.jobs.checkTemplate(input.jobTemplate, name);
    const row = await insertSchedule(this.ctx.db, {
      id: newJobId(),
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
    return (await listSchedules(this.ctx.db)).map(toSchedule);
  }

  /** Stops a schedule's ticks until it is resumed. */
  async pauseSchedule(name: string): Promise<Schedule> {
    const row = await setSchedulePaused(this.ctx.db, checkText(name, "name", LIMITS.nameLength, false), true, null);
    if (!row) throw new ScheduleNotFoundError(name);
    return toSchedule(row);
  }

  /** Resumes a paused schedule from its next tick after now (ticks during the pause are not made up). */
  async resumeSchedule(name: string, options: { now?: Date } = {}): Promise<Schedule> {
    const existing = await scheduleByName(this.ctx.db, checkText(name, "name", LIMITS.nameLength, false));
    if (!existing) throw new ScheduleNotFoundError(name);
    const now = options.now ?? this.now();
    const next = existing.next_run_at > now ? existing.next_run_at : planTicks(existing, now).next;
    const row = await setSchedulePaused(this.ctx.db, name, false, next);
    if (!row) throw new ScheduleNotFoundError(name);
    return toSchedule(row);
  }

  /** Deletes a schedule (jobs it already created are untouched); returns whether it existed. */
  deleteSchedule(name: string): Promise<boolean> {
    return deleteSchedule(this.ctx.db, checkText(name, "name", LIMITS.nameLength, false));
  }

  /**
   * Enqueues the jobs of every schedule whose tick has come, once per tick:
   * the schedule's row is locked (other schedulers skip it) and the tick is
   * recorded under a unique key in the same transaction as its job. Ticks
   * missed while nothing ran follow the schedule's `catchUp` policy. Workers
   * call this every second; tests call it with their own `now`.
   */
  async runDueSchedules(options: { now?: Date } = {}): Promise<FiredTick[]> {
    const now = options.now ?? this.now();
    const { fired, ready } = await retryTransient(() =>
      this.ctx.db.transaction(async (sql) => {
        const out: FiredTick[] = [];
        let anyReady = false;
        for (const row of await lockDueSchedules(sql, now, 100)) {
          const tick = await this.fire(sql, row, now);
          if (tick) {
            out.push(tick.fired);
            anyReady = tick.ready || anyReady;
          }
        }
        return { fired: out, ready: anyReady };
      }),
    );
    if (ready) this.ctx.notifier.poke();
    return fired;
  }

  /** Fires a locked due schedule's tick (unless its policy skips it) and moves it to its next tick. */
  private async fire(sql: Sql, row: ScheduleRow, now: Date): Promise<{ fired: FiredTick; ready: boolean } | undefined> {
    const plan = planTicks(row, now);
    let outcome: { fired: FiredTick; ready: boolean } | undefined;
    if (plan.fire) {
      const jobId = newJobId();
      if (await recordTick(sql, row.id, plan.fire, jobId)) {
        const { ready } = await this.jobs.writeTick(sql, row.job_template, { jobId, scheduleName: row.name, tickAt: plan.fire });
        outcome = { fired: { schedule: row.name, tickAt: plan.fire, jobId }, ready };
      }
    }
    await advanceSchedule(sql, row.id, plan.next, outcome ? { at: outcome.fired.tickAt, jobId: outcome.fired.jobId } : null);
    return outcome;
  }

  private now(): Date {
    return new Date(this.ctx.clock.now());
  }
}
