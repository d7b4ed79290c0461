import { statfsSync } from "node:fs";
import { SkeinError } from "../../core/errors";

/** Why the embedded PostgreSQL could not start (see {@link EmbeddedDatabaseError}). */
export type EmbeddedDatabaseFailure =
  /** A folder it must write to is on a read-only file system. */
  | "read-only"
  /** A folder it must write to has no free space left (or the disk quota is used up). */
  | "no-space"
  /** A folder it must write to cannot be written for another reason (a file in the way, permissions). */
  | "not-writable"
  /** Running as root, there is no user to run PostgreSQL as (PostgreSQL refuses to run as root). */
  | "no-user"
  /** The PostgreSQL binaries are missing or cannot run. */
  | "binaries"
  /** No port could be bound after several tries. */
  | "port"
  /** A PostgreSQL server that `server.json` does not lead to is already running on the cluster. */
  | "already-running"
  /** The server or initdb failed for another reason (the message quotes it). */
  | "start-failed";

/**
 * The embedded PostgreSQL could not start. The message is one sentence that
 * says what went wrong and what to do about it; `reason` classifies it.
 */
export class EmbeddedDatabaseError extends SkeinError {
  override name = "EmbeddedDatabaseError";
  constructor(
    /** What kind of failure this is. */
    readonly reason: EmbeddedDatabaseFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** What to do when the data folder cannot be written. */
export const ADVICE = "set --data-dir (or SKEIN_DATA_DIR) to a writable folder with free space, or set a database URL";

/** Quotes a path for a message (paths may hold spaces). */
export function quote(file: string): string {
  return JSON.stringify(file);
}

/** The error for a failed write (mkdir, open, write, rename) in `folder`. */
export function storageError(folder: string, error: unknown, advice = ADVICE): EmbeddedDatabaseError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? "";
  const what = `the embedded PostgreSQL cannot write to ${quote(folder)}`;
  if (code === "EROFS") return new EmbeddedDatabaseError("read-only", `${what}: it is on a read-only file system; ${advice}`, { cause: error });
  if (code === "ENOSPC") return new EmbeddedDatabaseError("no-space", `${what}: there is no space left on its disk; ${advice}`, { cause: error });
  if (code === "EDQUOT") return new EmbeddedDatabaseError("no-space", `${what}: the disk quota is used up; ${advice}`, { cause: error });
  const detail = oneLine(error instanceof Error ? error.message : String(error));
  return new EmbeddedDatabaseError("not-writable", `${what} (${detail}); ${advice}`, { cause: error });
}

/**
 * Classifies what initdb or postgres printed when it failed in `folder`:
 * the out-of-space and read-only cases get the data-folder advice. When the
 * log could not be written either (it is on the same full disk), a folder
 * with under 16 MiB free (one WAL segment) counts as full.
 */
export function failureFromOutput(output: string, folder: string, advice: string, fallback: () => EmbeddedDatabaseError): EmbeddedDatabaseError {
  if (/No space left on device|Disk quota exceeded|could not extend file/i.test(output) || diskLooksFull(folder)) {
    return storageError(folder, Object.assign(new Error("no space"), { code: "ENOSPC" }), advice);
  }
  if (/Read-only file system/i.test(output)) return storageError(folder, Object.assign(new Error("read-only"), { code: "EROFS" }), advice);
  return fallback();
}

function diskLooksFull(folder: string): boolean {
  try {
    const stats = statfsSync(folder);
    return stats.bavail * stats.bsize < 16 * 1024 * 1024;
  } catch {
    return false;
  }
}

/** The most telling line of a program's output (its last FATAL/ERROR/PANIC line, else its last line), trimmed. */
export function keyLine(output: string): string {
  const lines = output.split("\n").map((line) => line.trim()).filter((line) => line !== "");
  const telling = lines.filter((line) => /\b(FATAL|PANIC|ERROR|error):/.test(line));
  const line = telling[0] ?? lines[lines.length - 1] ?? "no output";
  return oneLine(line.replace(/^\S+ \S+ \S+ \[\d+\] /, "")).slice(0, 300);
}

/** Collapses a message onto one line, without a trailing full stop. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim().replace(/\.$/, "");
}
