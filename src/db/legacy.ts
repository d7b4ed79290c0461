import type pg from "pg";
import { MigrationError, type LocalMigration } from "./migrations";
import { TABLES, type SkeinSchema } from "./schema";

/** What Skein 0.1.0 left in schema `public`. */
export interface PublicInstallation {
  /** Skein's tables found in `public`. */
  tables: string[];
}

/**
 * Skein 0.1.0 kept its tables in `public` and recorded its migrations in
 * `public._prisma_migrations`. Found from the catalog alone: its `jobs` and
 * `job_history` tables with Skein's lease and dependency columns.
 */
export async function publicInstallation(client: pg.Client): Promise<PublicInstallation | undefined> {
  const { rows } = await client.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name = ANY($1::text[])`,
    [[...TABLES]],
  );
  const tables = rows.map((r) => r.table_name).sort();
  if (!tables.includes("jobs") || !tables.includes("job_history")) return undefined;
  const { rows: columns } = await client.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM information_schema.columns
     WHERE table_schema = 'public' AND table_name = 'jobs' AND column_name IN ('pending_dependencies', 'lease_token', 'lease_expires_at')`,
  );
  return columns[0].n === 3 ? { tables } : undefined;
}

/**
 * Moves a 0.1.0 installation's tables (with their indexes, constraints and
 * sequences) from `public` into `schema`, and its migration records from
 * `public._prisma_migrations` into the schema's own, in one transaction:
 * nothing is copied, so nothing can be lost, and on any error nothing has
 * moved. Returns the tables moved.
 */
export async function moveFromPublic(client: pg.Client, schema: SkeinSchema, legacy: PublicInstallation, local: LocalMigration[]): Promise<string[]> {
  const known = local.map((m) => m.name);
  await client.query("BEGIN");
  try {
    const clash = await client.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name = ANY($2::text[])`,
      [schema.name, legacy.tables],
    );
    if (clash.rows.length > 0) {
      throw new MigrationError(`schema "${schema.name}" already has tables named ${clash.rows.map((r) => r.table_name).join(", ")}; move or drop them first`);
    }
    const { rows: history } = await client.query<{ t: string | null }>(`SELECT to_regclass('public._prisma_migrations')::text AS t`);
    if (history[0].t === null) throw new MigrationError(`Skein's tables are in schema "public" but public._prisma_migrations is missing: this is not a Skein 0.1.0 installation to move`);
    const recorded = await client.query<{ migration_name: string }>(
      `SELECT migration_name FROM public."_prisma_migrations" WHERE migration_name = ANY($1::text[])`,
      [known],
    );
    if (recorded.rows.length === 0) throw new MigrationError(`public._prisma_migrations records none of Skein's migrations; this is not a Skein 0.1.0 installation`);
    for (const table of legacy.tables) await client.query(`ALTER TABLE public."${table}" SET SCHEMA ${schema.quoted}`);
    await client.query(
      `WITH moved AS (
         DELETE FROM public."_prisma_migrations" WHERE migration_name = ANY($1::text[]) RETURNING *
       )
       INSERT INTO ${schema.quoted}."_prisma_migrations" (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
       SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count FROM moved`,
      [known],
    );
    await client.query("COMMIT");
    return legacy.tables;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}
