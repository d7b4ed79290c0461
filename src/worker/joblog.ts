import type { Database } from "../db/database";
import { insertLogs } from "../db/sql/logs";
import type { Logger } from "../core/logger";
import type { Clock } from "../core/clock";
import type { JobLog } from "./types";

/** Most lines and characters one attempt stores; beyond them one "truncated" line says how many were dropped. */
export const LOG_CAP = { lines: 1000, chars: 256 * 1024, lineChars: 8192 } as const;

type Level = "debug" | "info" | "warn" | "error";
interface Line {
  job_id: string;
  attempt: number;
  at: string;
  level: Level;
  message: string;
  fields: Record<string, unknown> | null;
}

/**
 * `ctx.log` for one attempt: lines go to the worker's logger at once and are
 * stored in `job_logs` in batches (every 200 ms while the job runs, and at
 * its end), so that `skein logs --follow` sees them while it runs without a
 * round trip per line.
 */
export class AttemptLog implements JobLog {
  private buffer: Line[] = [];
  private lines = 0;
  private chars = 0;
  private dropped = 0;
  private timer: unknown;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Database,
    private readonly jobId: string,
    private readonly attempt: number,
    private readonly logger: Logger,
    private readonly clock: Clock,
  ) {}

  debug(message: string, fields?: Record<string, unknown>): void {
    this.add("debug", message, fields);
  }
  info(message: string, fields?: Record<string, unknown>): void {
    this.add("info", message, fields);
  }
  warn(message: string, fields?: Record<string, unknown>): void {
    this.add("warn", message, fields);
  }
  error(message: string, fields?: Record<string, unknown>): void {
    this.add("error", message, fields);
  }

  /** Writes what is buffered (and the truncation note); never throws. */
  async close(): Promise<void> {
    this.clock.clearTimeout(this.timer);
    if (this.dropped > 0) {
      this.buffer.push(this.line("warn", `log truncated: ${this.dropped} more line(s) dropped (limit ${LOG_CAP.lines} lines or ${LOG_CAP.chars} characters per attempt)`, null));
      this.dropped = 0;
    }
    await this.flush();
  }

  private add(level: Level, message: unknown, fields: Record<string, unknown> | undefined): void {
    const text = String(message).split("\u0000").join("\uFFFD").slice(0, LOG_CAP.lineChars);
    this.logger[level](text, fields ?? {});
    if (this.lines >= LOG_CAP.lines || this.chars + text.length > LOG_CAP.chars) {
      this.dropped++;
      return;
    }
    this.lines++;
    this.chars += text.length;
    this.buffer.push(this.line(level, text, storableFields(fields)));
    this.timer ??= this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, 200);
  }

  private line(level: Level, message: string, fields: Record<string, unknown> | null): Line {
    return { job_id: this.jobId, attempt: this.attempt, at: new Date(this.clock.now()).toISOString(), level, message, fields };
  }

  private flush(): Promise<void> {
    const batch = this.buffer.splice(0);
    if (batch.length === 0) return this.writing;
    this.writing = this.writing.then(() =>
      insertLogs(this.db, batch).catch((error: unknown) => {
        this.logger.warn("could not store job log lines", { error: String(error), lines: batch.length });
      }),
    );
    return this.writing;
  }
}

/** Fields as JSON (dropping what JSON cannot hold), or null. */
function storableFields(fields: Record<string, unknown> | undefined): Record<string, unknown> | null {
  if (!fields || typeof fields !== "object") return null;
  try {
    const text = JSON.stringify(fields, (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value));
    if (text === undefined || text.length > LOG_CAP.lineChars) return { note: "fields omitted (too large or not JSON)" };
    return JSON.parse(text.replace(/\\u0000/g, "\\uFFFD")) as Record<string, unknown>;
  } catch {
    return { note: "fields omitted (not JSON)" };
  }
}
