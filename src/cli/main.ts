import { MigrationError } from "../db/migrator";
import { SkeinError, ValidationError } from "../core/errors";
import { UsageError } from "./config";
import { DatabaseUnavailableError } from "./database";

/**
 * Runs a command's body and turns its outcome into an exit code: 0 on
 * success; 2 with a one-line message for bad flags or values; 1 with a
 * one-line message for an unreachable database or a refused operation; 1
 * with the stack for anything unexpected.
 */
export async function runCli(body: () => Promise<number | void>, options: { exitWhenDone?: boolean } = {}): Promise<void> {
  try {
    const code = await body();
    process.exitCode = code ?? 0;
  } catch (error) {
    process.exitCode = exitCodeFor(error);
    process.stderr.write(`${messageFor(error)}\n`);
  }
  // A worker that gave up on a job cannot stop the job's own code; once the
  // worker has shut down cleanly, do not wait for that code's timers.
  if (options.exitWhenDone) process.exit();
}

function exitCodeFor(error: unknown): number {
  return error instanceof UsageError || error instanceof ValidationError ? 2 : 1;
}

function messageFor(error: unknown): string {
  if (error instanceof UsageError || error instanceof ValidationError) return `error: ${error.message}`;
  if (error instanceof DatabaseUnavailableError || error instanceof MigrationError || error instanceof SkeinError) return `error: ${error.message}`;
  if (error instanceof Error) return `error: ${error.stack ?? error.message}`;
  return `error: ${String(error)}`;
}

/** yargs' failure handler: bad flags become a UsageError (one line, exit code 2). */
export function failUsage(message: string | null, error: Error | undefined): never {
  throw new UsageError((message ?? error?.message ?? "invalid arguments").replace(/\s*\n\s*/g, " ").trim());
}

/** Checks a numeric flag, naming it in the error. */
export function numberFlag(name: string, value: number | undefined, rule: { min?: number; integer?: boolean; positive?: boolean } = {}): number | undefined {
  if (value === undefined) return undefined;
  const bad =
    typeof value !== "number" ||
    !Number.isFinite(value) ||
    (rule.integer === true && !Number.isInteger(value)) ||
    (rule.positive === true && value <= 0) ||
    (rule.min !== undefined && value < rule.min);
  if (bad) {
    const wanted = rule.integer
      ? rule.positive
        ? "a positive integer"
        : rule.min !== undefined
          ? `an integer >= ${rule.min}`
          : "an integer"
      : rule.positive
        ? "a positive number"
        : `a number >= ${rule.min ?? 0}`;
    throw new UsageError(`invalid --${name} ${JSON.stringify(String(value))}: expected ${wanted}`);
  }
  return value;
}

/** Flags that take numbers: yargs reads an empty value ("--priority=") as 0, so it is refused here first. */
const NUMERIC_FLAGS = new Set([
  "max-retries", "priority", "timeout", "rate-limit-cost", "limit", "days", "jobs", "cost", "every", "port",
  "poll-interval", "max-concurrent-jobs", "stale-timeout", "heartbeat-interval", "shutdown-timeout",
  "history-retention-days", "cleanup-interval-hours",
]);

/** Throws a UsageError for a numeric flag given an empty value (`--priority=` or `--priority ""`). */
export function refuseEmptyNumbers(argv: readonly string[]): void {
  argv.forEach((arg, i) => {
    const inline = /^--([a-z-]+)=$/.exec(arg);
    const separate = /^--([a-z-]+)$/.exec(arg);
    const name = inline?.[1] ?? (separate && argv[i + 1] !== undefined && argv[i + 1].trim() === "" ? separate[1] : undefined);
    if (name !== undefined && NUMERIC_FLAGS.has(name)) throw new UsageError(`invalid --${name} "": expected a number`);
  });
}
