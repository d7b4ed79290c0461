import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import path from "node:path";
import { EmbeddedDatabaseError, quote, storageError } from "./errors";
import { isAlive, sleep } from "./process";

/** What `<dataDir>/server.json` records, for other processes to attach. */
export interface ServerState {
  url: string;
  adminUrl: string;
  pid: number;
  port: number;
}

/** The recorded server, if any. */
export function readState(dataDir: string): ServerState | undefined {
  try {
    const state = JSON.parse(readFileSync(path.join(dataDir, "server.json"), "utf8")) as Partial<ServerState>;
    if (typeof state.url !== "string" || typeof state.adminUrl !== "string") return undefined;
    return { url: state.url, adminUrl: state.adminUrl, pid: Number(state.pid) || 0, port: Number(state.port) || 0 };
  } catch {
    return undefined;
  }
}

/** Records the server (mode 0600: its URLs hold the password). */
export function writeState(dataDir: string, state: ServerState): void {
  writePrivateFile(dataDir, "server.json", JSON.stringify(state, null, 2));
}

/**
 * Writes `<folder>/<name>` with mode 0600, atomically (a temporary file in
 * the same folder, then a rename): a reader never sees half of it, and a
 * file left from an older version with a looser mode is replaced, not reused.
 * A failure removes the temporary file and is thrown as a storage error.
 */
export function writePrivateFile(folder: string, name: string, content: string): void {
  const file = path.join(folder, name);
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    const fd = openSync(temporary, "wx", 0o600);
    try {
      writeSync(fd, content);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, file);
  } catch (error) {
    removeFile(temporary);
    throw storageError(folder, error);
  }
}

/** unlink, ignoring a file that is already gone. */
export function removeFile(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}

/** Serialises starting the server between processes sharing a data folder. */
export async function withStartLock<T>(dataDir: string, fn: () => Promise<T>): Promise<T> {
  const lockFile = path.join(dataDir, "start.lock");
  const deadline = Date.now() + 120_000;
  while (!takeLock(lockFile)) {
    const holder = Number(readFileSafe(lockFile));
    if (!holder || !isAlive(holder)) {
      removeFile(lockFile); // its holder died; the next turn of the loop takes it
      continue;
    }
    if (Date.now() > deadline) {
      throw new EmbeddedDatabaseError("start-failed", `another process (pid ${holder}) has been starting the embedded PostgreSQL for ${quote(dataDir)} for two minutes; stop it, or remove ${quote(lockFile)} if it is not a Skein command`);
    }
    await sleep(100);
  }
  try {
    return await fn();
  } finally {
    removeFile(lockFile);
  }
}

/** Creates the lock file with our pid; false if it exists. Other failures (read-only, full) are storage errors. */
function takeLock(lockFile: string): boolean {
  let fd: number;
  try {
    fd = openSync(lockFile, "wx", 0o644);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw storageError(path.dirname(lockFile), error);
  }
  try {
    writeSync(fd, String(process.pid));
    return true;
  } catch (error) {
    removeFile(lockFile);
    throw storageError(path.dirname(lockFile), error);
  } finally {
    closeSync(fd);
  }
}

/** A file's trimmed text, or "" if it cannot be read. */
export function readFileSafe(file: string): string {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return "";
  }
}
