import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { waitFor } from "./wait";

const root = path.resolve(__dirname, "..", "..");

/** A CLI process started from the build in dist/ (npm test builds first). */
export interface CliProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `node dist/cli/<bin>.js ...args`. */
export function startCli(bin: "run-worker" | "init-worker" | "skein", args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  const child = spawn(process.execPath, [path.join(root, "dist", "cli", `${bin}.js`), ...args], {
    cwd: root,
    env: { ...process.env, SKEIN_DATABASE_URL: "", DATABASE_URL: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return { child, output: () => out, exited };
}

/** Runs a CLI command to completion. */
export async function runCli(bin: "run-worker" | "init-worker" | "skein", args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [path.join(root, "dist", "cli", `${bin}.js`), ...args], {
    cwd: root,
    env: { ...process.env, SKEIN_DATABASE_URL: "", DATABASE_URL: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  return { code, stdout, stderr };
}

/** Lines of the per-attempt execution log written by tests/fixtures/agents.js. */
export function readRunLog(file: string): Array<{ event: string; job: string; worker: string; attempt: number; pid: number; at: number }> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line));
}

export const AGENTS_FIXTURE = path.join(root, "tests", "fixtures", "agents.js");

/** Worker processes of one test file, with their execution log (see {@link useWorkerProcesses}). */
export interface WorkerProcesses {
  /** Starts `run-worker` on the test database with the fixture agents and these extra flags. */
  start(...args: string[]): CliProcess;
  /** Waits until `n` workers have registered. */
  registered(n: number): Promise<void>;
  /** The per-attempt execution log written by the fixture agents. */
  log(): ReturnType<typeof readRunLog>;
}

/**
 * Registers hooks that give each test a fresh execution log and kill every
 * worker process it started (SIGCONT first, for paused ones).
 */
export function useWorkerProcesses(ctx: { db: { url: string }; pool: { query(text: string): Promise<{ rows: Array<{ n: number }> }> } }): WorkerProcesses {
  let dir = "";
  const started: CliProcess[] = [];
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "skein-workers-"));
  });
  afterEach(async () => {
    for (const p of started.splice(0)) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill("SIGCONT");
        p.child.kill("SIGKILL");
        await p.exited;
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const runLog = () => path.join(dir, "runs.jsonl");
  return {
    start(...args) {
      const p = startCli(
        "run-worker",
        ["--database-url", ctx.db.url, "--agents", AGENTS_FIXTURE, "--log-level", "warn", "--poll-interval", "0.5", ...args],
        { SKEIN_TEST_RUN_LOG: runLog() },
      );
      started.push(p);
      return p;
    },
    async registered(n) {
      await waitFor(async () => (await ctx.pool.query("SELECT count(*)::int AS n FROM workers")).rows[0].n >= n, `${n} workers to register`);
    },
    log: () => readRunLog(runLog()),
  };
}
