"use strict";
// The PostgreSQL server the benchmark runs on: an embedded one in a temporary
// folder (started from the built Skein package), or the one at --database-url.
// Every library and every workload gets a fresh database, cloned from a
// per-library template that holds the library's schema.
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const pg = require("pg");
const { distDir } = require("./snapshot");

const PREFIX = "skein_bench_";

/** Settings the embedded server runs with (on top of Skein's own: loopback only, max_connections 300). */
const EMBEDDED_SETTINGS = {};

class Server {
  constructor({ adminUrl, embedded, dataDir, pid, settings }) {
    this.adminUrl = adminUrl;
    this.embedded = embedded;
    this.dataDir = dataDir;
    this.pid = pid;
    this.settings = settings;
    this.created = new Set();
    this.handle = undefined;
  }

  /** URL of database `name` on this server. */
  url(name) {
    const u = new URL(this.adminUrl);
    u.pathname = `/${name}`;
    return u.toString();
  }

  async admin(fn) {
    const client = new pg.Client({ connectionString: this.adminUrl });
    client.on("error", () => undefined);
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /**
   * Creates database `name` (dropping a leftover of the same name), optionally
   * from a template. `fileCopy`: copy the template's files (STRATEGY FILE_COPY,
   * PostgreSQL 15 and later) instead of writing every page to the WAL, for
   * large templates (the backlog's).
   */
  async createDatabase(name, template, { fileCopy = false } = {}) {
    if (!name.startsWith(PREFIX)) throw new Error(`refusing to create ${name}: benchmark databases start with ${PREFIX}`);
    await this.admin(async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`);
      let strategy = "";
      if (template && fileCopy) {
        const { rows } = await c.query("SELECT current_setting('server_version_num')::int AS v");
        if (rows[0].v >= 150000) strategy = " STRATEGY FILE_COPY";
      }
      await c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}${template ? ` TEMPLATE ${c.escapeIdentifier(template)}${strategy}` : ""}`);
    });
    this.created.add(name);
    return this.url(name);
  }

  async dropDatabase(name) {
    if (!name.startsWith(PREFIX)) return;
    await this.admin((c) => c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`));
    this.created.delete(name);
  }

  /** Server version and the settings that matter for a queue benchmark. */
  async describe() {
    return this.admin(async (c) => {
      const { rows } = await c.query(`SELECT current_setting('server_version') AS version,
        current_setting('server_version_num')::int AS version_num,
        current_setting('autovacuum_naptime') AS autovacuum_naptime,
        current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS synchronous_commit,
        current_setting('full_page_writes') AS full_page_writes, current_setting('wal_level') AS wal_level,
        current_setting('shared_buffers') AS shared_buffers, current_setting('work_mem') AS work_mem,
        current_setting('max_connections') AS max_connections, current_setting('autovacuum') AS autovacuum,
        current_setting('jit') AS jit`);
      return { ...rows[0], embedded: this.embedded, serverCpu: this.pid ? "read from /proc" : "not available (server not on this machine, or no /proc)" };
    });
  }

  /** Drops every database this run created, then stops the embedded server. */
  async close({ keep = false } = {}) {
    if (!keep) {
      for (const name of [...this.created]) await this.dropDatabase(name).catch(() => undefined);
    }
    if (this.handle) {
      await this.handle.stop({ force: true }).catch(() => undefined);
      this.handle = undefined;
      if (this.dataDir && !keep) fs.rmSync(this.dataDir, { recursive: true, force: true });
    }
  }

  /**
   * CPU time (ms) the server's processes have used so far: the postmaster,
   * its live children (backends, autovacuum, WAL writer...) and the children
   * that have exited. Linux only (`/proc`); null where the postmaster is not
   * known (a server at --database-url on another machine or in another PID
   * namespace, see `findLocalPostmaster`) or `/proc` cannot be read.
   * Clock-tick resolution (10 ms at 100 Hz).
   */
  cpuMs() {
    if (!this.pid) return null;
    try {
      let ticks = 0;
      for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        let stat;
        try {
          stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
        } catch {
          continue; // exited meanwhile
        }
        // Fields after the command name (which may hold spaces), from field 3 (state) on.
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const pid = Number(entry);
        const ppid = Number(f[1]);
        if (pid === this.pid) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
        else if (ppid === this.pid) ticks += Number(f[11]) + Number(f[12]);
      }
      return ticks * 10;
    } catch {
      return null;
    }
  }

  /** Last resort on exit: kill the embedded server synchronously. */
  killNow() {
    if (this.handle && this.pid) {
      try {
        process.kill(this.pid, "SIGINT");
      } catch {
        // already gone
      }
    }
  }
}

/** A process's /proc/<pid>/cmdline as one string ("" when unreadable). */
function cmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
  } catch {
    return "";
  }
}

/**
 * The postmaster's PID of the server `client` is connected to, when that
 * server runs on this machine in our PID namespace; else undefined. The
 * backend's PID (pg_backend_pid) is only trusted if the process of that PID
 * here is a PostgreSQL backend serving this very connection: its title
 * ("postgres: user db 127.0.0.1(port) ...") names our socket's local port, or
 * "[local]" for a Unix socket. Its parent is the postmaster.
 */
async function findLocalPostmaster(client) {
  if (process.platform !== "linux") return undefined;
  const { rows } = await client.query("SELECT pg_backend_pid() AS pid");
  const backend = rows[0].pid;
  const title = cmdline(backend);
  const port = client.connection?.stream?.localPort;
  const ours = title.startsWith("postgres") && (port ? title.includes(`(${port})`) : title.includes("[local]"));
  if (!ours) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${backend}/stat`, "utf8");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    return /postgres|postmaster/.test(cmdline(ppid)) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

async function openServer({ databaseUrl, log = () => undefined }) {
  if (databaseUrl) {
    const server = new Server({ adminUrl: databaseUrl, embedded: false });
    server.pid = await server.admin(async (c) => {
      const { rows } = await c.query("SELECT current_setting('server_version_num')::int AS v");
      if (rows[0].v < 130000) throw new Error("--database-url: PostgreSQL 13 or later is needed (DROP DATABASE ... WITH (FORCE))");
      return findLocalPostmaster(c);
    });
    log(server.pid ? `the server's postmaster is PID ${server.pid} on this machine: its CPU is read from /proc` : "the server is not on this machine (or not in this PID namespace): its CPU is not measured");
    return server;
  }
  const { startEmbeddedDatabase } = require(distDir());
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "skein-bench-"));
  // mkdtemp makes it private; as root the server runs as `postgres`, which must reach its data folder.
  fs.chmodSync(dataDir, 0o755);
  const handle = await startEmbeddedDatabase({ dataDir, settings: EMBEDDED_SETTINGS, log });
  let pid;
  try {
    pid = JSON.parse(fs.readFileSync(path.join(dataDir, "server.json"), "utf8")).pid;
  } catch {
    pid = undefined;
  }
  const server = new Server({ adminUrl: handle.adminUrl, embedded: true, dataDir, pid, settings: EMBEDDED_SETTINGS });
  server.handle = handle;
  return server;
}

module.exports = { openServer, PREFIX, EMBEDDED_SETTINGS };
