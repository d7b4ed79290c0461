import { Cron } from "croner";
import { ValidationError } from "../core/errors";

const parsed = new Map<string, Cron>();

/**
 * A cron expression read in a timezone (croner's parser: 5 fields, or 6 with
 * seconds first), never run on its own timer; parsed once and kept (a
 * catch-up asks it for thousands of ticks).
 */
function pattern(expression: string, timezone: string): Cron {
  const key = `${timezone} ${expression}`;
  let cron = parsed.get(key);
  if (!cron) {
    cron = new Cron(expression, { timezone, paused: true });
    if (parsed.size >= 256) parsed.delete(parsed.keys().next().value as string);
    parsed.set(key, cron);
  }
  return cron;
}

/**
 * The first time strictly after `after` at which a cron expression fires in a
 * timezone (daylight saving included), from any clock: tests pass their own.
 */
export function nextCronTime(expression: string, timezone: string, after: Date): Date {
  const next = pattern(expression, timezone).nextRun(after);
  if (!next) throw new ValidationError("cron", `${JSON.stringify(expression)} never fires after ${after.toISOString()}`);
  return next;
}

/** Checks a cron expression and a timezone, naming the bad field. */
export function checkCron(expression: unknown, timezone: string): string {
  checkTimezone(timezone);
  try {
    if (typeof expression !== "string") throw new TypeError("not a string");
    pattern(expression, timezone);
  } catch {
    throw new ValidationError("cron", `must be a valid cron expression such as "*/5 * * * *" (got ${JSON.stringify(expression)})`);
  }
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
