import { spawn } from "node:child_process";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { canConnect } from "../../../src/db/embedded";
import type { EmbeddedDatabase, EmbeddedDatabaseOptions } from "../../../src/db/embedded";

export const ROOT = path.resolve(__dirname, "..", "..", "..");

/** The build's startEmbeddedDatabase and migrate (the suite runs against dist/, as the CLI does). */
function dist(): {
  startEmbeddedDatabase: (options: EmbeddedDatabaseOptions) => Promise<EmbeddedDatabase>;
  migrate: (url: string) => Promise<{ applied: string[] }>;
} {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the build, loaded at run time (it need not exist when typechecking)
  return require(path.join(ROOT, "dist", "db", "index.js"));
}

/** URL of database `name` on the server of `adminUrl`. */
export function databaseUrl(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Creates a database (migrated unless told otherwise) and returns its URL. */
export async function createDatabase(adminUrl: string, prefix: string, options: { migrated?: boolean } = {}): Promise<string> {
  const name = `chaos_${prefix}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)} TEMPLATE template0`);
    // The scenarios' own SQL names Skein's tables bare; Skein's statements are schema-qualified
    // whatever the search path (the main suite checks that on databases without this setting).
    await admin.query(`ALTER DATABASE ${admin.escapeIdentifier(name)} SET search_path = skein, public`);
  } finally {
    await admin.end();
  }
  const url = databaseUrl(adminUrl, name);
  if (options.migrated !== false) await dist().migrate(url);
  return url;
}

/** The server the global setup started (shared by scenarios that do not restart it). */
export function sharedAdminUrl(): string {
  const url = process.env.CHAOS_ADMIN_URL;
  if (!url) throw new Error("CHAOS_ADMIN_URL is not set: run the chaos suite through its jest config (npm run test:chaos)");
  return url;
}


function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * An embedded PostgreSQL of the scenario's own, started with
 * startEmbeddedDatabase from dist in a temporary folder, that the scenario
 * may stop and start again on the same port (so the workers' URL stays
 * valid): `stop("fast")` is PostgreSQL's fast shutdown (SIGINT),
 * `stop("immediate")` its immediate shutdown (SIGQUIT: no checkpoint, crash
 * recovery at the next start). `start()` runs the postmaster again with the
 * command line it recorded in postmaster.opts.
 */
export class OwnServer {
  restarts = 0;
  private constructor(
    readonly dataDir: string,
    readonly adminUrl: string,
  ) {}

  static async start(settings: Record<string, string> = {}): Promise<OwnServer> {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "skein-chaos-pg-"));
    chmodSync(dataDir, 0o755); // the server runs as the postgres user when we are root
    const embedded = await dist().startEmbeddedDatabase({ dataDir, settings });
    return new OwnServer(dataDir, embedded.adminUrl);
  }

  private get pgdata(): string {
    return path.join(this.dataDir, "pgdata");
  }

  /** The postmaster's pid (from postmaster.pid), if it runs. */
  pid(): number | undefined {
    try {
      const pid = Number(readFileSync(path.join(this.pgdata, "postmaster.pid"), "utf8").split("\n")[0]);
      return pid > 0 && isAlive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  async stop(mode: "fast" | "immediate" = "fast"): Promise<void> {
    const pid = this.pid();
    if (!pid) return;
    process.kill(pid, mode === "fast" ? "SIGINT" : "SIGQUIT");
    const deadline = Date.now() + 30_000;
    while (isAlive(pid)) {
      if (Date.now() > deadline) {
        process.kill(pid, "SIGKILL");
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  async start(): Promise<void> {
    if (this.pid()) return;
    const opts = readFileSync(path.join(this.pgdata, "postmaster.opts"), "utf8").trim();
    const binary = opts.split(" ")[0];
    const args = [...opts.slice(binary.length).matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1].replace(/\\(.)/g, "$1"));
    const ids: { uid?: number; gid?: number } = {};
    if (os.userInfo().uid === 0) {
      ids.uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
      ids.gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    }
    const logFd = openSync(path.join(this.dataDir, "postgres.log"), "a");
    const child = spawn(binary, args, { detached: true, stdio: ["ignore", logFd, logFd], ...ids });
    closeSync(logFd);
    child.unref();
    const deadline = Date.now() + 60_000;
    while (!(await canConnect(this.adminUrl))) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`PostgreSQL did not come back: ${this.logTail()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    this.restarts++;
  }

  logTail(lines = 20): string {
    const file = path.join(this.dataDir, "postgres.log");
    return existsSync(file) ? readFileSync(file, "utf8").split("\n").slice(-lines).join("\n") : "";
  }

  /** Stops the server (whichever postmaster runs now) and removes its folder. */
  async close(): Promise<void> {
    // Not embedded.stop(): after a restart the pid it remembers is gone (and could be reused);
    // postmaster.pid names the server that runs now.
    await this.stop("fast").catch(() => undefined);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Drops a database made by createDatabase (its server must still run). */
export async function dropDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  const admin = new URL(url);
  admin.pathname = "/postgres";
  const client = new pg.Client({ connectionString: admin.toString() });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`);
  } catch {
    // the server is gone already: nothing to drop
  } finally {
    await client.end().catch(() => undefined);
  }
}
