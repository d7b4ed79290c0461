import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import path from "node:path";
import type pg from "pg";
import { LEASE } from "./budget";
import { ROOT } from "./server";

export const AGENTS = path.join(ROOT, "tests", "chaos", "fixtures", "chaos-agents.js");

/** A worker process: `node dist/cli/run-worker.js` with the chaos agents. */
export interface WorkerProcess {
  id: string;
  child: ChildProcess;
  startedAt: number;
  /** Set when the test killed, paused or stopped it, or when it died on its own. */
  fate?: "killed" | "paused" | "stopped" | "died";
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  outputFile: string;
}

/** A fault the test injected, with the time it happened. */
export interface FaultEvent {
  t: number;
  kind: string;
  target?: string;
  until?: number;
}

/**
 * Starts, kills, pauses and stops worker processes for one scenario, and
 * records every fault it injects. All processes it started are killed by
 * `killAll()` (call it in afterAll).
 */
export class Cluster {
  readonly workers: WorkerProcess[] = [];
  readonly faults: FaultEvent[] = [];
  /** Workers that exited without being told to (a crash of Skein itself). */
  readonly died: Array<{ id: string; t: number; code: number | null; signal: NodeJS.Signals | null; excerpt: string; atStart: boolean }> = [];
  private next = 1;
  private replacements = 0;
  /** Workers that exited at start because the database was unreachable (the CLI's one-line exit 1). */
  startRefused = 0;
  private closing = false;

  constructor(
    private readonly options: {
      databaseUrl: string;
      logDir: string;
      concurrency: number;
      pollInterval?: number;
      extraArgs?: string[];
    },
  ) {}

  start(id = `w${this.next++}`, extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}): WorkerProcess {
    const outputFile = path.join(this.options.logDir, `${id}.out`);
    const out = openSync(outputFile, "a");
    const args = [
      path.join(ROOT, "dist", "cli", "run-worker.js"),
      "--database-url", this.options.databaseUrl,
      "--agents", AGENTS,
      "--query-engine", AGENTS,
      "--worker-id", id,
      "--log-level", "warn",
      "--max-concurrent-jobs", String(this.options.concurrency),
      "--poll-interval", String(this.options.pollInterval ?? 1),
      "--stale-timeout", String(LEASE.staleTimeout),
      "--heartbeat-interval", String(LEASE.heartbeatInterval),
      "--shutdown-timeout", "5",
      // Every other worker claims ahead of its free slots, so the faults hit jobs held but not started too.
      ...(this.workers.length % 2 === 1 ? ["--prefetch", "4"] : []),
      ...(this.options.extraArgs ?? []),
      ...extraArgs,
    ];
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, SKEIN_DATABASE_URL: "", DATABASE_URL: "", CHAOS_LOG_DIR: this.options.logDir, CHAOS_WORKER_ID: id, ...env },
      stdio: ["ignore", out, out],
    });
    closeSync(out);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    const proc: WorkerProcess = { id, child, startedAt: Date.now(), exited, outputFile };
    this.workers.push(proc);
    void exited.then(({ code, signal }) => {
      if (proc.fate !== undefined) return;
      proc.fate = "died";
      const out = this.output(proc);
      // A worker started while the database is down exits 1 with one line: that is the CLI's
      // documented behaviour, not a crash. Anything else is.
      const lines = out.trim().split("\n");
      if (code === 1 && /^error: cannot reach the database/.test(lines[0]) && lines.length === 1) {
        this.startRefused++;
      } else {
        const unhandled = out.match(/Unhandled '?error'? event[\s\S]*?\n\s*((?:\w*Error|error): [^\n]*)/);
        const first = lines.find((l) => !l.startsWith("{")) ?? lines[lines.length - 1] ?? "";
        const excerpt = unhandled
          ? `crashed on an unhandled 'error' event: ${unhandled[1]}`
          : `${first.slice(0, 300)}${lines.length > 1 && /^\s+at /m.test(out) ? ` (printed with a ${lines.filter((l) => /^\s+at /.test(l)).length}-line stack trace)` : ""}`;
        this.died.push({ id, t: Date.now(), code, signal, excerpt, atStart: !unhandled && /^error: /.test(first) });
      }
      if (!this.closing && this.replacements > 0) {
        this.replacements--;
        setTimeout(() => {
          if (!this.closing) this.start(undefined, extraArgs, env);
        }, 500);
      }
    });
    return proc;
  }

  /**
   * Replaces (after half a second) up to `max` workers that exit on their own: each crash is still
   * reported by survivalViolations; a start refused because the database is down is only counted.
   */
  replaceDeadWorkers(max: number): void {
    this.replacements = max;
  }

  /** One violation per worker that died without being told to. */
  survivalViolations(): string[] {
    return this.died.map((d) =>
      d.atStart
        ? `startup: worker ${d.id} could not start (exit ${d.code ?? d.signal}) and said so with a stack trace, not the documented one-line error: ${d.excerpt}`
        : `survival: worker ${d.id} exited on its own (exit ${d.code ?? d.signal}): ${d.excerpt}`,
    );
  }

  live(): WorkerProcess[] {
    return this.workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null && w.fate === undefined);
  }

  /** kill -9. */
  async kill(worker: WorkerProcess): Promise<void> {
    worker.fate = "killed";
    this.faults.push({ t: Date.now(), kind: "kill -9", target: worker.id });
    worker.child.kill("SIGKILL");
    await worker.exited;
  }

  pause(worker: WorkerProcess): void {
    worker.fate = "paused";
    this.faults.push({ t: Date.now(), kind: "SIGSTOP", target: worker.id });
    worker.child.kill("SIGSTOP");
  }

  resume(worker: WorkerProcess): void {
    this.faults.push({ t: Date.now(), kind: "SIGCONT", target: worker.id });
    worker.child.kill("SIGCONT");
  }

  output(worker: WorkerProcess): string {
    try {
      return readFileSync(worker.outputFile, "utf8");
    } catch {
      return "";
    }
  }

  /** SIGTERM to every live worker; waits for them (SIGKILL after `graceMs`). Returns the exit codes. */
  async stopAll(graceMs = 15_000): Promise<Array<{ id: string; code: number | null; signal: NodeJS.Signals | null }>> {
    this.closing = true;
    const running = this.workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
    for (const w of running) {
      if (w.fate === "paused") w.child.kill("SIGCONT");
      w.fate ??= "stopped";
      w.child.kill("SIGTERM");
    }
    return Promise.all(
      running.map(async (w) => {
        const timer = setTimeout(() => w.child.kill("SIGKILL"), graceMs);
        const exit = await w.exited;
        clearTimeout(timer);
        return { id: w.id, ...exit };
      }),
    );
  }

  /** Kills every process this cluster started that still runs (afterAll). */
  async killAll(): Promise<void> {
    this.closing = true;
    await Promise.all(
      this.workers
        .filter((w) => w.child.exitCode === null && w.child.signalCode === null)
        .map(async (w) => {
          w.child.kill("SIGCONT");
          w.child.kill("SIGKILL");
          await w.exited;
        }),
    );
  }
}

/**
 * Waits until no job is live. Returns undefined when drained, else a
 * violation describing what was left (a liveness failure: the checker then
 * also lists each job that never finished).
 */
export async function drain(pool: pg.Pool, what: string, timeoutMs: number): Promise<string | undefined> {
  const count = async () => (await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM jobs")).rows[0].n;
  try {
    await until(async () => (await count().catch(() => -1)) === 0, what, timeoutMs, 250);
    return undefined;
  } catch {
    const { rows } = await pool.query<{ state: string; n: number; workers: string | null }>(
      `SELECT CASE WHEN status = 'running' THEN CASE WHEN lease_expires_at < now() THEN 'running, lease expired' ELSE 'running' END
                   WHEN pending_dependencies > 0 THEN 'pending, blocked'
                   WHEN run_at > now() THEN 'pending, waiting for run_at'
                   ELSE 'pending and ready' END AS state,
              count(*)::int AS n, string_agg(DISTINCT locked_by, ', ') AS workers
         FROM jobs GROUP BY 1 ORDER BY 1`,
    );
    return `liveness: ${what} did not happen within ${Math.round(timeoutMs / 1000)} s; still live: ${rows.map((r) => `${r.n} ${r.state}${r.workers ? ` (${r.workers})` : ""}`).join(", ")}`;
  }
}

/** Resolves after `ms`. */
export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` every `everyMs` until it returns a truthy value; throws after `timeoutMs`. */
export async function until<T>(check: () => Promise<T | undefined | null | false>, what: string, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await delay(everyMs);
  }
}
