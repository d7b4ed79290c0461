import { createHash, randomBytes } from "node:crypto";
import { chmodSync, chownSync, closeSync, existsSync, fchownSync, mkdirSync, mkdtempSync, openSync, readdirSync, realpathSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ADVICE, EmbeddedDatabaseError, failureFromOutput, keyLine, quote, storageError } from "./errors";
import { firstBlockedFolder } from "./identity";
import { isAlive, run, type Identity } from "./process";
import { firstUsableFolder } from "./shared";
import { readFileSafe, removeFile, writePrivateFile } from "./state";

/** Where a data folder's cluster (PGDATA) lives. */
export interface ClusterPlace {
  /** The cluster's folder. */
  pgdata: string;
  /** The folder holding it (initdb's temporary folders go there). */
  parent: string;
  /** What to do when `parent` is read-only or full. */
  advice: string;
}

/** `<dataDir>/cluster.json`: where the cluster lives when it is not `<dataDir>/pgdata`. */
const POINTER = "cluster.json";

/**
 * `<dataDir>/pgdata`, unless we are root and the run-as user cannot enter
 * the data folder (a private clone): then `<shared>/<hash>/pgdata`, owned by
 * that user, recorded in `<dataDir>/cluster.json` for later runs. The
 * private folder's mode is never loosened.
 */
export function placeCluster(dataDir: string, user: Identity | undefined, sharedFolders: readonly string[], log: (m: string) => void): ClusterPlace {
  const pgdata = recordedPgdata(dataDir);
  if (pgdata && existsSync(path.dirname(pgdata))) {
    return { pgdata, parent: path.dirname(pgdata), advice: externalAdvice(path.dirname(pgdata), user) };
  }
  if (pgdata) log(`the cluster recorded in ${path.join(dataDir, POINTER)} (${pgdata}) is gone: a new one will be initialised`);
  const local = path.join(dataDir, "pgdata");
  const blocked = user && !existsSync(path.join(local, "PG_VERSION")) ? firstBlockedFolder(user, dataDir) : undefined;
  if (!user || !blocked) {
    if (pgdata) removeFile(path.join(dataDir, POINTER));
    return { pgdata: local, parent: dataDir, advice: ADVICE };
  }
  return externalPlace(dataDir, user, blocked, sharedFolders, log);
}

function recordedPgdata(dataDir: string): string | undefined {
  try {
    const { pgdata } = JSON.parse(readFileSafe(path.join(dataDir, POINTER)) || "{}") as { pgdata?: unknown };
    return typeof pgdata === "string" && path.isAbsolute(pgdata) ? pgdata : undefined;
  } catch {
    return undefined;
  }
}

function externalAdvice(folder: string, user: Identity | undefined): string {
  return `free space in ${quote(folder)}, set --data-dir (or SKEIN_DATA_DIR) to a writable folder the ${user?.name ?? "postgres"} user can enter, or set a database URL`;
}

function externalPlace(dataDir: string, user: Identity, blocked: string, candidates: readonly string[], log: (m: string) => void): ClusterPlace {
  const { folder, problems } = firstUsableFolder(candidates, user);
  if (!folder) {
    const message = `the ${user.name} user that runs PostgreSQL cannot enter ${quote(blocked)} and no shared folder could hold the cluster instead (${problems.join("; ")})`;
    throw new EmbeddedDatabaseError("not-writable", `${message}; move the project to a folder that user can enter, make ${quote(candidates[0] ?? "/var/lib/skein")} writable, or set a database URL`);
  }
  sweepOrphans(folder, log);
  // One folder per data folder: the same path finds the same cluster even if cluster.json is lost.
  const realDataDir = realpathSync(dataDir);
  const home = path.join(folder, createHash("sha256").update(realDataDir).digest("hex").slice(0, 32));
  const advice = externalAdvice(folder, user);
  try {
    // Root's, group of the run-as user, 0710: that user can only pass through to pgdata, and
    // cannot swap what root writes and chowns here (origin, initdb's temporary folders).
    mkdirSync(home, { recursive: true, mode: 0o710 });
    chownSync(home, 0, user.gid);
    chmodSync(home, 0o710);
    discardUnrecorded(path.join(home, "pgdata"), log);
    writeFileSync(path.join(home, "origin"), `${realDataDir}\n`);
  } catch (error) {
    throw error instanceof EmbeddedDatabaseError ? error : storageError(home, error, advice);
  }
  writePrivateFile(dataDir, POINTER, JSON.stringify({ pgdata: path.join(home, "pgdata") }, null, 2));
  log(`the ${user.name} user cannot enter ${blocked}: the cluster of ${dataDir} lives in ${home} (recorded in ${POINTER})`);
  return { pgdata: path.join(home, "pgdata"), parent: home, advice };
}

/**
 * A cluster in this data folder's shared home that its cluster.json does not
 * lead to belonged to an earlier data folder at the same path, deleted since
 * with its password: unusable, so it is replaced (as deleting a data folder
 * deletes a cluster kept inside it).
 */
function discardUnrecorded(pgdata: string, log: (m: string) => void): void {
  if (!existsSync(pgdata)) return;
  const pid = postmasterPid(pgdata);
  if (pid) {
    throw new EmbeddedDatabaseError("already-running", `a PostgreSQL server (pid ${pid}) is running on ${quote(pgdata)}, a cluster whose password is lost; stop it (kill -INT ${pid}) and start again`);
  }
  log(`removing ${pgdata}: its password went with an earlier data folder at the same path`);
  rmSync(pgdata, { recursive: true, force: true });
}

/** The pid in postmaster.pid if that process is alive. */
function postmasterPid(pgdata: string): number | undefined {
  const pid = Number(readFileSafe(path.join(pgdata, "postmaster.pid")).split("\n")[0]);
  return isAlive(pid) ? pid : undefined;
}

/**
 * Removes the shared clusters of data folders that were inside the
 * temporary folder and are gone (a test's mkdtemp): nothing else would ever
 * remove them. Clusters of other data folders are left alone: a missing
 * project folder may only be unmounted or moved.
 */
function sweepOrphans(folder: string, log: (m: string) => void): void {
  const tmp = realTmpdir();
  for (const entry of readdirSync(folder)) {
    const home = path.join(folder, entry);
    const origin = readFileSafe(path.join(home, "origin"));
    if (!origin || !origin.startsWith(tmp + path.sep) || existsSync(origin) || postmasterPid(path.join(home, "pgdata"))) continue;
    try {
      rmSync(home, { recursive: true, force: true });
      log(`removed ${home}, the cluster of ${origin} (a temporary folder that no longer exists)`);
    } catch {
      // Housekeeping only: the next start tries again.
    }
  }
}

function realTmpdir(): string {
  try {
    return realpathSync(os.tmpdir());
  } catch {
    return os.tmpdir();
  }
}

/** What {@link ensureCluster} needs. */
export interface ClusterSetup {
  place: ClusterPlace;
  dataDir: string;
  /** The `native` folder (bin, lib, share). */
  binDir: string;
  user: Identity | undefined;
  /** The superuser's password for a new cluster (default: random). */
  password: string | undefined;
  /** Skip initdb's final sync (~40 MB): for clusters the server will run with fsync=off anyway. */
  noSync: boolean;
  log: (m: string) => void;
}

/**
 * Initialises the cluster unless it exists, and returns its password (kept
 * in `<dataDir>/password`, mode 0600). initdb writes into a temporary folder
 * renamed to `pgdata` on success, so a `pgdata` with PG_VERSION is complete.
 */
export async function ensureCluster(setup: ClusterSetup): Promise<string> {
  const { place, dataDir } = setup;
  const passwordFile = path.join(dataDir, "password");
  removeLeftovers(place.parent);
  if (place.parent !== dataDir) removeLeftovers(dataDir);
  if (existsSync(path.join(place.pgdata, "PG_VERSION"))) {
    const password = readFileSafe(passwordFile);
    if (password) return password;
    throw new EmbeddedDatabaseError("start-failed", `the cluster in ${quote(place.pgdata)} has no password file ${quote(passwordFile)}; remove ${quote(place.pgdata)} to start afresh, or set a database URL`);
  }
  setup.log(`initialising an embedded PostgreSQL cluster in ${place.pgdata}`);
  const password = setup.password ?? randomBytes(18).toString("hex");
  let staging: string | undefined;
  let savedPassword = false;
  try {
    staging = mkdtempSync(path.join(place.parent, "pgdata.init-"));
    if (setup.user) chownSync(staging, setup.user.uid, setup.user.gid);
    await initdb(setup, staging, password);
    writePrivateFile(dataDir, "password", password);
    savedPassword = true;
    // A pgdata without PG_VERSION is not a cluster: an interrupted initialisation by an older version.
    rmSync(place.pgdata, { recursive: true, force: true });
    renameSync(staging, place.pgdata);
  } catch (error) {
    if (staging) rmSync(staging, { recursive: true, force: true });
    if (savedPassword) removeFile(passwordFile);
    throw error instanceof EmbeddedDatabaseError ? error : storageError(place.parent, error, place.advice);
  }
  return password;
}

/**
 * Runs initdb as the run-as user. Its password file is in a fresh 0700
 * folder that user owns, next to the cluster (never in /tmp), mode 0600,
 * and removed whatever happens.
 */
async function initdb(setup: ClusterSetup, staging: string, password: string): Promise<void> {
  const { place, user } = setup;
  const secrets = mkdtempSync(path.join(place.parent, ".initdb-"));
  try {
    const pwfile = path.join(secrets, "pwfile");
    const fd = openSync(pwfile, "wx", 0o600);
    try {
      writeSync(fd, `${password}\n`);
      if (user) fchownSync(fd, user.uid, user.gid);
    } finally {
      closeSync(fd);
    }
    // Handed over only now that it holds the file: the user could not swap the file before the chown.
    if (user) chownSync(secrets, user.uid, user.gid);
    // C locale: the same cluster on every machine, needing no OS locale.
    const args = ["-D", staging, "-U", "postgres", "--auth=scram-sha-256", `--pwfile=${pwfile}`, "-E", "UTF8", "--locale=C", "--no-instructions"];
    if (setup.noSync) args.push("--no-sync");
    const result = await run(path.join(setup.binDir, "bin", "initdb"), args, user);
    if (result.code === 0) return;
    const why = result.error ? `${result.error.code}: ${result.error.message}` : keyLine(result.output);
    throw failureFromOutput(result.output, place.parent, place.advice, () => {
      return new EmbeddedDatabaseError("start-failed", `initdb could not create the embedded PostgreSQL cluster in ${quote(place.pgdata)} (${why}); fix that, or set a database URL`);
    });
  } finally {
    rmSync(secrets, { recursive: true, force: true });
  }
}

/** What a start that died left in the cluster's folder; we hold the start lock, so nobody else is using them. */
function removeLeftovers(parent: string): void {
  for (const entry of readdirSync(parent)) {
    if (entry.startsWith("pgdata.init-") || entry.startsWith(".initdb-") || /^(password|server\.json|cluster\.json)\.\d+\.[0-9a-f]+\.tmp$/.test(entry)) {
      try {
        rmSync(path.join(parent, entry), { recursive: true, force: true });
      } catch {
        // Best effort: a read-only folder fails later, with a clear message.
      }
    }
  }
}
