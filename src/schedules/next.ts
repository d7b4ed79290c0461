import cron from "node-cron";
import { ValidationError } from "../core/errors";

interface TimeMatcher {
  getNextMatch(after: Date): Date;
}

/**
 * The first time strictly after `after` at which a cron expression fires in a
 * timezone, computed by node-cron's own matcher (the same rules, daylight
 * saving included, as its scheduler), from any clock: tests pass their own.
 */
export function nextCronTime(expression: string, timezone: string, after: Date): Date {
  const task = cron.createTask(expression, () => undefined, { timezone });
  try {
    const matcher = (task as unknown as { timeMatcher?: TimeMatcher }).timeMatcher;
    if (!matcher || typeof matcher.getNextMatch !== "function") throw new Error("this node-cron version does not expose its time matcher");
    return matcher.getNextMatch(after);
  } finally {
    void task.destroy();
  }
}

/** Checks a cron expression and a timezone, naming the bad field. */
export function checkCron(expression: unknown, timezone: string): string {
  if (typeof expression !== "string" || !cron.validate(expression)) {
    throw new ValidationError("cron", `must be a valid cron expression such as "*/5 * * * *" (got ${JSON.stringify(expression)})`);
  }
  checkTimezone(timezone);
  return expression;
}

/** Checks an IANA timezone name. */
export function checkTimezone(timezone: unknown): string {
  if (typeof timezone !== "string" || timezone === "") throw new ValidationError("timezone", "must be an IANA timezone name such as \"Europe/Paris\"");
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    throw new ValidationError("timezone", `unknown timezone ${JSON.stringify(timezone)}`);
  }
  return timezone;
}

/** The next tick strictly after `after` of a cron or interval schedule; interval ticks stay on the grid from `anchor`. */
export function nextTick(schedule: { cron: string | null; intervalSeconds: number | null; timezone: string }, anchor: Date, after: Date): Date {
  if (schedule.cron !== null) return nextCronTime(schedule.cron, schedule.timezone, after);
  const step = (schedule.intervalSeconds as number) * 1000;
  const passed = Math.floor((after.getTime() - anchor.getTime()) / step) + 1;
  return new Date(anchor.getTime() + Math.max(1, passed) * step);
}
