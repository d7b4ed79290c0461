import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";

/** A PgBouncer started for a test, in front of the test's PostgreSQL. */
export interface Bouncer {
  /** `url` with PgBouncer's host and port instead of PostgreSQL's. */
  url(direct: string): string;
  log(): string;
  stop(): Promise<void>;
}

const BINARIES = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"];

/** Debian's pgbouncer, if installed (`.ci/run` installs it). */
export function pgbouncerBinary(): string | undefined {
  return BINARIES.find((file) => existsSync(file));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/**
 * Starts PgBouncer in transaction mode (as Supabase, Neon and Heroku run it)
 * for the server of `serverUrl`, with `poolSize` server connections per
 * database and user. As root it runs as `nobody` (PgBouncer refuses root).
 */
export async function startPgBouncer(serverUrl: string, options: { poolSize?: number } = {}): Promise<Bouncer> {
  const binary = pgbouncerBinary();
  if (!binary) throw new Error("pgbouncer is not installed (apt-get install pgbouncer; .ci/run does)");
  const server = new URL(serverUrl);
  const dir = mkdtempSync(path.join(os.tmpdir(), "skein-pgbouncer-"));
  const port = await freePort();
  const user = decodeURIComponent(server.username);
  writeFileSync(path.join(dir, "users.txt"), `"${user}" "${decodeURIComponent(server.password)}"\n`, { mode: 0o600 });
  writeFileSync(
    path.join(dir, "pgbouncer.ini"),
    [
      "[databases]",
      `* = host=${server.hostname} port=${server.port || 5432}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "auth_type = trust",
      `auth_file = ${path.join(dir, "users.txt")}`,
      "pool_mode = transaction",
      `default_pool_size = ${options.poolSize ?? 5}`,
      "max_client_conn = 500",
      "ignore_startup_parameters = extra_float_digits",
      `logfile = ${path.join(dir, "pgbouncer.log")}`,
      `pidfile = ${path.join(dir, "pgbouncer.pid")}`,
      "unix_socket_dir =",
      "",
    ].join("\n"),
  );
  const asRoot = os.userInfo().uid === 0;
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", "nobody"]).toString());
    chmodSync(dir, 0o700);
    for (const file of ["", "users.txt", "pgbouncer.ini"]) chownSync(path.join(dir, file), uid, -1);
  }
  const child: ChildProcess = spawn(binary, [...(asRoot ? ["-u", "nobody"] : []), path.join(dir, "pgbouncer.ini")], { stdio: "ignore" });
  child.on("error", () => undefined);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const log = () => (existsSync(path.join(dir, "pgbouncer.log")) ? readFileSync(path.join(dir, "pgbouncer.log"), "utf8") : "");
  const deadline = Date.now() + 10_000;
  while (!log().includes("process up")) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`pgbouncer did not start:\n${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    url(direct) {
      const through = new URL(direct);
      through.hostname = "127.0.0.1";
      through.port = String(port);
      return through.toString();
    },
    log,
    async stop() {
      child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
