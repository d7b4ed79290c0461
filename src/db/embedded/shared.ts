import { chmodSync, lstatSync, mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { firstBlockedFolder } from "./identity";
import type { Identity } from "./process";

/** Where root keeps what the run-as user must reach but cannot in the project's folders. */
export interface SharedFolders {
  /** Candidates, in order, for the copy of the PostgreSQL binaries. */
  cache: string[];
  /** Candidates, in order, for clusters whose data folder the run-as user cannot reach. */
  clusters: string[];
}

/**
 * `sharedDir` when given (tests), else the system's places for a cache and
 * for state (FHS), then a fallback in the temporary folder for a read-only
 * /var (clusters kept there last until the folder is cleaned).
 */
export function sharedFolders(sharedDir: string | undefined): SharedFolders {
  if (sharedDir) return { cache: [path.join(sharedDir, "cache")], clusters: [path.join(sharedDir, "clusters")] };
  return {
    cache: ["/var/cache/skein", path.join(os.tmpdir(), "skein-cache")],
    clusters: ["/var/lib/skein/clusters", path.join(os.tmpdir(), "skein-clusters")],
  };
}

/**
 * The first candidate that exists or can be made, that only root can write
 * (so nobody can plant binaries or swap a cluster in it, even in a
 * world-writable /tmp), and that `user` can enter. Returns it and why the
 * others were passed over.
 */
export function firstUsableFolder(candidates: readonly string[], user: Identity): { folder?: string; problems: string[] } {
  const problems: string[] = [];
  for (const candidate of candidates) {
    try {
      makePublicFolder(candidate);
    } catch (error) {
      problems.push(`${candidate}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      continue;
    }
    const stats = lstatSync(candidate);
    if (!stats.isDirectory() || stats.uid !== 0 || (stats.mode & 0o022) !== 0) {
      problems.push(`${candidate}: not a folder that only root can write`);
      continue;
    }
    const blocked = firstBlockedFolder(user, candidate);
    if (blocked) {
      problems.push(`${candidate}: the ${user.name} user cannot enter ${blocked}`);
      continue;
    }
    return { folder: candidate, problems };
  }
  return { problems };
}

/** mkdir -p, with mode 0755 on every folder it makes (whatever the umask). */
function makePublicFolder(folder: string): void {
  const first = mkdirSync(folder, { recursive: true, mode: 0o755 });
  if (first === undefined) return;
  for (let current = folder; ; current = path.dirname(current)) {
    chmodSync(current, 0o755);
    if (current === first || current === path.dirname(current)) break;
  }
}
