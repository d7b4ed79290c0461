import { createHash, randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";

/**
 * The advisory lock key Prisma Migrate takes while it migrates. Using the same
 * key makes Skein's migrator and `prisma migrate deploy` wait for each other.
 */
const MIGRATION_LOCK_KEY = 72707369;

/** The migrations shipped with this version of Skein. */
export const DEFAULT_MIGRATIONS_DIR = path.resolve(__dirname, "..", "..", "prisma", "migrations");

/** Options for {@link migrate}. */
export interface MigrateOptions {
  /** Folder in Prisma Migrate's layout (`<name>/migration.sql`). @defaultValue the package's `prisma/migrations` */
  migrationsDir?: string;
  /** Called with a line for each migration applied. */
  log?: (message: string) => void;
}

/** What {@link migrate} did. */
export interface MigrateResult {
  /** Names of the migrations applied by this call, in order. */
  applied: string[];
  /** Names of all migrations recorded as applied after this call. */
  current: string[];
}

/** Raised when the database's migration state does not allow migrating safely. */
export class MigrationError extends Error {
  override readonly name = "MigrationError";
}

interface LocalMigration {
  name: string;
  sql: string;
  checksum: string;
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

/** Reads `<dir>/<name>/migration.sql` in name order, as Prisma Migrate does. */
export function readMigrations(dir: string = DEFAULT_MIGRATIONS_DIR): LocalMigration[] {
  if (!existsSync(dir)) throw new MigrationError(`migrations folder not found: ${dir}`);
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(path.join(dir, entry.name, "migration.sql")))
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const buffer = readFileSync(path.join(dir, name, "migration.sql"));
      return { name, sql: buffer.toString("utf8"), checksum: createHash("sha256").update(buffer).digest("hex") };
    });
}

/**
 * Applies the pending SQL migrations to a database and records each in
 * `_prisma_migrations` exactly as Prisma Migrate does (so `prisma migrate
 * deploy` agrees with it). Idempotent and safe to run from many processes at
 * once (they queue on an advisory lock). Refuses, changing nothing, when an
 * applied migration's file has changed, when a migration had failed, or when
 * the database holds migrations this version of Skein does not know.
 */
export async function migrate(databaseUrl: string, options: MigrateOptions = {}): Promise<MigrateResult> {
  const local = readMigrations(options.migrationsDir);
  const client = new pg.Client({ connectionString: databaseUrl, application_name: "skein-migrate" });
  client.on("error", () => undefined);
  await client.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    try {
      await ensureMigrationsTable(client);
      const applied = await appliedMigrations(client);
      const pending = planMigrations(local, applied);
      for (const migration of pending) {
        await applyMigration(client, migration);
        options.log?.(`applied migration ${migration.name}`);
      }
      return { applied: pending.map((m) => m.name), current: local.map((m) => m.name) };
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]).catch(() => undefined);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function ensureMigrationsTable(client: pg.Client): Promise<void> {
  // The same definition Prisma Migrate creates.
  await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                  VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"            VARCHAR(64) NOT NULL,
    "finished_at"         TIMESTAMPTZ,
    "migration_name"      VARCHAR(255) NOT NULL,
    "logs"                TEXT,
    "rolled_back_at"      TIMESTAMPTZ,
    "started_at"          TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0
  )`);
}

async function appliedMigrations(client: pg.Client): Promise<AppliedRow[]> {
  const { rows } = await client.query<AppliedRow>(
    `SELECT migration_name, checksum, finished_at, rolled_back_at
       FROM "_prisma_migrations" ORDER BY started_at, migration_name`,
  );
  return rows;
}

/** Decides which local migrations to apply, or refuses. Pure, so the rules are easy to read. */
function planMigrations(local: LocalMigration[], applied: AppliedRow[]): LocalMigration[] {
  const failed = applied.filter((row) => row.finished_at === null && row.rolled_back_at === null);
  if (failed.length > 0) {
    throw new MigrationError(
      `migration ${failed.map((r) => r.migration_name).join(", ")} failed earlier and was not resolved; ` +
        `fix the database, then mark it rolled back (prisma migrate resolve --rolled-back <name>)`,
    );
  }
  const done = new Map(applied.filter((r) => r.finished_at !== null && r.rolled_back_at === null).map((r) => [r.migration_name, r]));
  const known = new Set(local.map((m) => m.name));
  const unknown = [...done.keys()].filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new MigrationError(
      `the database has migrations this version of Skein does not know (${unknown.join(", ")}); ` +
        `it was migrated by a newer version: upgrade Skein`,
    );
  }
  const changed = local.filter((m) => done.has(m.name) && done.get(m.name)?.checksum !== m.checksum);
  if (changed.length > 0) {
    throw new MigrationError(
      `migration ${changed.map((m) => m.name).join(", ")} was changed after it was applied ` +
        `(checksum differs); migrations are append-only: restore the file and add a new migration`,
    );
  }
  return local.filter((m) => !done.has(m.name));
}

async function applyMigration(client: pg.Client, migration: LocalMigration): Promise<void> {
  const id = randomUUID();
  await client.query(
    `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count)
     VALUES ($1, $2, $3, now(), 0)`,
    [id, migration.checksum, migration.name],
  );
  try {
    await client.query("BEGIN");
    await client.query(migration.sql);
    await client.query(`UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1`, [id]);
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    const message = error instanceof Error ? error.message : String(error);
    await client.query(`UPDATE "_prisma_migrations" SET logs = $2 WHERE id = $1`, [id, message]).catch(() => undefined);
    throw new MigrationError(`migration ${migration.name} failed: ${message}`);
  }
}
