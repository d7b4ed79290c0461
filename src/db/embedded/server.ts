import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync, statSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import pg from "pg";
import type { ClusterPlace } from "./cluster";
import { EmbeddedDatabaseError, failureFromOutput, keyLine, oneLine, quote, storageError } from "./errors";
import { isAlive, sleep, spawnOptions, type Identity } from "./process";
import type { ServerState } from "./state";

const DEFAULT_SETTINGS: Record<string, string> = {
  listen_addresses: "127.0.0.1",
  unix_socket_directories: "",
  max_connections: "300",
};

/** Tries this many ports: a free port can be taken by someone else before the server binds it. */
const PORT_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 60_000;

/** What {@link launch} needs. */
export interface LaunchPlan {
  dataDir: string;
  /** The `native` folder (bin, lib, share). */
  binDir: string;
  place: ClusterPlace;
  user: Identity | undefined;
  password: string;
  databaseName: string;
  settings: Record<string, string> | undefined;
  /** The port to try first. */
  port: number | undefined;
  log: (m: string) => void;
}

interface Failure {
  /** What the server wrote to its log during this attempt. */
  output: string;
  error?: NodeJS.ErrnoException;
  timedOut?: boolean;
}

/**
 * Starts postgres on `plan.port` or a free port, trying other free ports
 * when the port turns out to be taken, creates the database, and returns
 * what `server.json` records. Failures are {@link EmbeddedDatabaseError}s.
 */
export async function launch(plan: LaunchPlan): Promise<ServerState> {
  for (let attempt = 1; ; attempt++) {
    const port = attempt === 1 && plan.port ? plan.port : await freePort();
    const adminUrl = `postgresql://postgres:${encodeURIComponent(plan.password)}@127.0.0.1:${port}/postgres`;
    const started = await startOnce(plan, port, adminUrl);
    if (typeof started === "number") {
      await ensureDatabase(plan, started, adminUrl);
      const url = `postgresql://postgres:${encodeURIComponent(plan.password)}@127.0.0.1:${port}/${encodeURIComponent(plan.databaseName)}`;
      plan.log(`embedded PostgreSQL listening on 127.0.0.1:${port} (data in ${plan.place.pgdata})`);
      return { url, adminUrl, pid: started, port };
    }
    if (!/Address already in use/.test(started.output)) throw startFailure(plan, started);
    if (attempt >= PORT_ATTEMPTS) {
      throw new EmbeddedDatabaseError("port", `the embedded PostgreSQL could not bind a port on 127.0.0.1 in ${PORT_ATTEMPTS} tries (the last was ${port}); free some ports, or set a database URL`);
    }
    plan.log(`port ${port} is taken: trying another`);
  }
}

/** Spawns postgres once; resolves with its pid once it accepts connections, or with why it did not. */
async function startOnce(plan: LaunchPlan, port: number, adminUrl: string): Promise<number | Failure> {
  const logFile = path.join(plan.dataDir, "postgres.log");
  const offset = sizeOf(logFile);
  const settings = { ...DEFAULT_SETTINGS, ...plan.settings, port: String(port) };
  const args = ["-D", plan.place.pgdata, ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`])];
  let fd: number;
  try {
    fd = openSync(logFile, "a", 0o600);
  } catch (error) {
    throw storageError(plan.dataDir, error);
  }
  let child: ChildProcess;
  try {
    // Detached: its own process group, so Ctrl-C in the terminal reaches the
    // worker (which drains gracefully) and not the database under it.
    child = spawn(path.join(plan.binDir, "bin", "postgres"), args, { ...spawnOptions(plan.user), detached: true, stdio: ["ignore", fd, fd] });
  } catch (error) {
    return { output: "", error: error as NodeJS.ErrnoException };
  } finally {
    closeSync(fd);
  }
  const exited = new Promise<Failure>((resolve) => {
    // The listener that keeps a failed spawn (EACCES...) from being an unhandled 'error' event.
    child.once("error", (error) => resolve({ output: "", error }));
    child.once("exit", () => resolve({ output: "" }));
  });
  child.unref();
  const outcome = await waitUntilReady(adminUrl, exited);
  if (outcome === "ready") return child.pid ?? 0;
  if (outcome === "timeout") {
    child.kill("SIGINT"); // it may be in crash recovery; a fast shutdown loses nothing
    return { output: readFrom(logFile, offset), timedOut: true };
  }
  return { ...outcome, output: readFrom(logFile, offset) };
}

async function waitUntilReady(url: string, exited: Promise<Failure>): Promise<"ready" | "timeout" | Failure> {
  let ended: Failure | undefined;
  void exited.then((failure) => {
    ended = failure;
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (ended) return ended;
    // Raced with the exit: on a port someone else holds, a connection attempt can hang for its whole timeout.
    if (await Promise.race([canConnect(url), exited.then(() => false)])) return "ready";
    await sleep(50);
  }
  return ended ?? "timeout";
}

function startFailure(plan: LaunchPlan, failure: Failure): EmbeddedDatabaseError {
  const logFile = path.join(plan.dataDir, "postgres.log");
  if (failure.error) {
    return new EmbeddedDatabaseError("binaries", `could not run ${quote(path.join(plan.binDir, "bin", "postgres"))} (${failure.error.code ?? oneLine(failure.error.message)}); reinstall the dependencies (npm ci), or set a database URL`);
  }
  const running = /lock file "postmaster\.pid" already exists[\s\S]*?PID (\d+)/.exec(failure.output);
  if (running) {
    const pid = running[1];
    return new EmbeddedDatabaseError("already-running", `another PostgreSQL server (pid ${pid}) is running on ${quote(plan.place.pgdata)} but ${quote(path.join(plan.dataDir, "server.json"))} does not lead to it; stop it (kill -INT ${pid}) and start again`);
  }
  return failureFromOutput(failure.output, plan.place.parent, plan.place.advice, () => {
    const why = failure.timedOut ? `it accepted no connection within ${READY_TIMEOUT_MS / 1000} s` : keyLine(failure.output);
    return new EmbeddedDatabaseError("start-failed", `the embedded PostgreSQL did not start (${why}); see ${quote(logFile)}, or set a database URL`);
  });
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function readFrom(file: string, offset: number): string {
  try {
    return readFileSync(file).subarray(offset).toString("utf8");
  } catch {
    return "";
  }
}

/** Whether a PostgreSQL URL accepts a connection and a query now. @internal */
export async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query("SELECT 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** CREATE DATABASE unless it exists; on failure the server just started is stopped. */
async function ensureDatabase(plan: LaunchPlan, pid: number, adminUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  client.on("error", () => undefined);
  try {
    await client.connect();
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [plan.databaseName]);
    if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(plan.databaseName)}`);
  } catch (error) {
    await client.end().catch(() => undefined);
    await stopServer(pid);
    const message = oneLine((error as Error).message);
    throw failureFromOutput(message, plan.place.parent, plan.place.advice, () => {
      return new EmbeddedDatabaseError("start-failed", `the embedded PostgreSQL started but could not create the database ${JSON.stringify(plan.databaseName)} (${message}); set a database URL`, { cause: error });
    });
  }
  await client.end().catch(() => undefined);
}

/**
 * True when another client is connected. A backend of a connection that was
 * just closed lingers for a moment, so look again for up to a second before
 * concluding that someone else (another Skein command) still uses the server.
 */
export async function stillInUse(adminUrl: string): Promise<boolean> {
  for (let i = 0; i < 20; i++) {
    if ((await otherClients(adminUrl)) === 0) return false;
    await sleep(50);
  }
  return true;
}

async function otherClients(adminUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: adminUrl });
  client.on("error", () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    );
    return rows[0]?.n ?? 0;
  } catch {
    return 0;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Fast shutdown (SIGINT), then SIGQUIT if it takes over 30 s. */
export async function stopServer(pid: number): Promise<void> {
  if (!signal(pid, "SIGINT")) return;
  const deadline = Date.now() + 30_000;
  while (isAlive(pid) && Date.now() < deadline) await sleep(25);
  signal(pid, "SIGQUIT");
}

function signal(pid: number, name: NodeJS.Signals): boolean {
  if (!isAlive(pid)) return false;
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false; // it exited meanwhile
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", (error) => reject(new EmbeddedDatabaseError("port", `no free port on 127.0.0.1 (${oneLine(error.message)}); set a database URL`, { cause: error })));
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
