import { randomUUID } from "node:crypto";
import pg from "pg";
import { moveFromPublic, publicInstallation } from "./legacy";
import { migrationsTableSql, MigrationError, readMigrations, type LocalMigration } from "./migrations";
import type { Sql } from "./database";
import { SkeinSchema } from "./schema";
import { readDatabaseUrl } from "./url";

export { DEFAULT_MIGRATIONS_DIR, MigrationError, migrationScript, type MigrationScriptOptions } from "./migrations";

/**
 * The advisory lock key Prisma Migrate takes while it migrates. Skein takes
 * it too (after its own key for the schema), so that Skein's migrator and a
 * `prisma migrate deploy` of Skein's migrations wait for each other.
 */
const PRISMA_MIGRATION_LOCK_KEY = "72707369";

/** Options for {@link migrate}. */
export interface MigrateOptions {
  /**
   * The PostgreSQL schema to create Skein's tables in (created if missing).
   * A `?schema=` parameter in the URL means the same.
   * @defaultValue "skein"
   */
  schema?: string;
  /** Folder in Prisma Migrate's layout (`<name>/migration.sql`). @defaultValue the package's `prisma/migrations` */
  migrationsDir?: string;
  /**
   * Move the tables of a Skein 0.1.0 installation (in schema `public`, with
   * its migrations recorded in `public._prisma_migrations`) into `schema`
   * before migrating. Without it, `migrate` refuses on such a database and
   * says so.
   * @defaultValue false
   */
  moveFromPublic?: boolean;
  /** Called with a line for each step taken. */
  log?: (message: string) => void;
}

/** What {@link migrate} did. */
export interface MigrateResult {
  /** The schema migrated. */
  schema: string;
  /** Names of the migrations applied by this call, in order. */
  applied: string[];
  /** Names of all migrations recorded as applied after this call. */
  current: string[];
  /** Tables moved from `public` (with `moveFromPublic`). */
  moved: string[];
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

/**
 * Applies the pending SQL migrations to Skein's schema of a database (give
 * it a direct URL, not one through a transaction-mode pooler) and records
 * each in that schema's own `_prisma_migrations`, as Prisma Migrate would
 * with `?schema=`; the application's migration history is never read or
 * written. Idempotent and safe to run from many processes at once (they
 * queue on advisory locks). Refuses, changing nothing, when an applied
 * migration's file has changed, when a migration had failed, when the schema
 * holds migrations this version does not know, or when Skein 0.1.0's tables
 * are in `public` (see `moveFromPublic`).
 */
export async function migrate(databaseUrl: string, options: MigrateOptions = {}): Promise<MigrateResult> {
  const fromUrl = readDatabaseUrl(databaseUrl);
  if (options.schema !== undefined && fromUrl.schema !== undefined && options.schema !== fromUrl.schema) {
    throw new MigrationError(`the schema option says "${options.schema}" and the URL's ?schema= says "${fromUrl.schema}"`);
  }
  const schema = SkeinSchema.of(options.schema ?? fromUrl.schema);
  const local = readMigrations(options.migrationsDir);
  const client = new pg.Client({ connectionString: fromUrl.url, application_name: "skein-migrate" });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await withMigrationLocks(client, schema, async () => {
      const moved = await adoptLegacy(client, schema, local, options);
      const applied = await appliedMigrations(client, schema);
      const pending = planMigrations(local, applied);
      for (const migration of pending) {
        await applyMigration(client, schema, migration);
        options.log?.(`applied migration ${migration.name} to schema ${schema.name}`);
      }
      return { schema: schema.name, applied: pending.map((m) => m.name), current: local.map((m) => m.name), moved };
    });
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Throws a {@link MigrationError} that says what to run when the schema of
 * `db` holds no Skein tables (never migrated, or a 0.1.0 installation still
 * in `public`).
 */
export async function assertMigrated(db: Sql): Promise<void> {
  const [row] = await db.query<{ migrated: boolean; legacy: boolean }>(
    `SELECT to_regclass($1) IS NOT NULL AS migrated,
       to_regclass('public.jobs') IS NOT NULL AND to_regclass('public.job_history') IS NOT NULL AS legacy`,
    [db.schema.table("jobs")],
  );
  if (row.migrated) return;
  const flag = db.schema.name === "skein" ? "" : ` --schema ${db.schema.name}`;
  if (row.legacy) throw new MigrationError(`schema "${db.schema.name}" has no Skein tables, but Skein 0.1.0's are in schema "public": run \`init-worker --move-from-public${flag}\``);
  throw new MigrationError(`schema "${db.schema.name}" has no Skein tables: run \`init-worker${flag}\` (or migrate(url, { schema: "${db.schema.name}" }))`);
}

/** Runs `fn` holding the schema's migration lock and Prisma Migrate's (in that order: no deadlock between Skein migrators). */
async function withMigrationLocks<T>(client: pg.Client, schema: SkeinSchema, fn: () => Promise<T>): Promise<T> {
  const keys = [schema.lockKey("migrate"), PRISMA_MIGRATION_LOCK_KEY];
  for (const key of keys) await client.query("SELECT pg_advisory_lock($1::bigint)", [key]);
  try {
    return await fn();
  } finally {
    for (const key of [...keys].reverse()) await client.query("SELECT pg_advisory_unlock($1::bigint)", [key]).catch(() => undefined);
  }
}

/**
 * Creates the schema and its migration records, after refusing (changing
 * nothing), or with `moveFromPublic` moving, a Skein 0.1.0 installation found
 * in `public` while the schema has no records yet.
 */
async function adoptLegacy(client: pg.Client, schema: SkeinSchema, local: LocalMigration[], options: MigrateOptions): Promise<string[]> {
  const legacy = (await hasRecords(client, schema)) ? undefined : await publicInstallation(client);
  if (!legacy) {
    await createSchema(client, schema);
    return [];
  }
  if (!options.moveFromPublic) {
    throw new MigrationError(
      `Skein 0.1.0's tables are in schema "public" (${legacy.tables.join(", ")}); this version keeps them in schema "${schema.name}". ` +
        `Nothing was changed. Move them (nothing is lost) with \`init-worker --move-from-public${schema.name === "skein" ? "" : ` --schema ${schema.name}`}\` ` +
        `or migrate(url, { schema: "${schema.name}", moveFromPublic: true }); see "Upgrading from 0.1.0" in the README`,
    );
  }
  await createSchema(client, schema);
  const moved = await moveFromPublic(client, schema, legacy, local);
  options.log?.(`moved ${moved.length} tables of Skein 0.1.0 from schema public to schema ${schema.name}`);
  return moved;
}

/** Whether the schema records any migration already. */
async function hasRecords(client: pg.Client, schema: SkeinSchema): Promise<boolean> {
  const table = `${schema.quoted}."_prisma_migrations"`;
  const { rows } = await client.query<{ exists: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS exists`, [table]);
  if (!rows[0].exists) return false;
  const { rows: records } = await client.query<{ any: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${table}) AS any`);
  return records[0].any;
}

async function createSchema(client: pg.Client, schema: SkeinSchema): Promise<void> {
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema.quoted}`);
  await client.query(migrationsTableSql(schema));
}

async function appliedMigrations(client: pg.Client, schema: SkeinSchema): Promise<AppliedRow[]> {
  const { rows } = await client.query<AppliedRow>(
    `SELECT migration_name, checksum, finished_at, rolled_back_at
       FROM ${schema.quoted}."_prisma_migrations" ORDER BY started_at, migration_name`,
  );
  return rows;
}

/** Decides which local migrations to apply, or refuses. Pure, so the rules are easy to read. */
export function planMigrations(local: LocalMigration[], applied: AppliedRow[]): LocalMigration[] {
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

/** Applies one migration in its own transaction, with the schema as the search path (the files name no schema, as Prisma Migrate's do). */
async function applyMigration(client: pg.Client, schema: SkeinSchema, migration: LocalMigration): Promise<void> {
  const table = `${schema.quoted}."_prisma_migrations"`;
  const id = randomUUID();
  await client.query(`INSERT INTO ${table} (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, now(), 0)`, [
    id,
    migration.checksum,
    migration.name,
  ]);
  try {
    await client.query("BEGIN");
    await client.query(`SET LOCAL search_path TO ${schema.quoted}`);
    await client.query(migration.sql);
    await client.query(`UPDATE ${table} SET finished_at = now(), applied_steps_count = 1 WHERE id = $1`, [id]);
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    const message = error instanceof Error ? error.message : String(error);
    await client.query(`UPDATE ${table} SET logs = $2 WHERE id = $1`, [id, message]).catch(() => undefined);
    throw new MigrationError(`migration ${migration.name} failed: ${message}`);
  }
}
