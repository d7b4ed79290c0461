import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";

/** A user to run PostgreSQL as (when we are root). */
export interface Identity {
  name: string;
  uid: number;
  gid: number;
}

/** How a program ended: its exit code or signal, its output, or the error that kept it from starting. */
export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stdout and stderr, interleaved (the last 64 KiB). */
  output: string;
  /** Set when the program could not be started (ENOENT, EACCES...). */
  error?: NodeJS.ErrnoException;
}

/**
 * The environment of every program we start: English messages (we read them
 * to classify failures) and a fixed PATH; nothing of ours (no PGPASSWORD,
 * PGDATA...) leaks into PostgreSQL, and nothing is read from the environment of this process.
 */
export const CHILD_ENV: NodeJS.ProcessEnv = {
  LC_ALL: "C",
  LANG: "C",
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
};

/**
 * Spawn options for a program run as `user`: its uid and gid, and `/` as the
 * working directory (ours may be a folder that user cannot enter).
 */
export function spawnOptions(user: Identity | undefined): SpawnOptions {
  return { cwd: "/", env: CHILD_ENV, ...(user ? { uid: user.uid, gid: user.gid } : {}) };
}

/** Runs a program to its end. Never rejects: a program that cannot start resolves with `error`. */
export function run(command: string, args: readonly string[], user?: Identity, timeoutMs = 120_000): Promise<RunResult> {
  return new Promise((resolve) => {
    let output = "";
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-65_536);
    };
    let child: ChildProcess;
    try {
      child = spawn(command, args, { ...spawnOptions(user), stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      resolve({ code: null, signal: null, output, error: error as NodeJS.ErrnoException });
      return;
    }
    // Not spawn's `timeout` option: after a failed spawn its timer lives on and keeps the process up.
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs).unref();
    const finish = (result: RunResult) => {
      clearTimeout(timer);
      resolve(result);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    // Without this listener a failed spawn (EACCES, ENOENT) is an unhandled 'error' event that crashes the process.
    child.once("error", (error) => finish({ code: null, signal: null, output, error }));
    child.once("close", (code, signal) => finish({ code, signal, output }));
  });
}

/** Whether a process with this pid exists (EPERM: it does, owned by someone else). */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
