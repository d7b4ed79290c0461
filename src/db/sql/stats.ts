import type { Sql } from "../database";
import { join, sql, statement, T, variants } from "./template";

/**
 * The tables whose size the hot statements' plans depend on: the claim,
 * completion and insert statements look rows up in them by id.
 */
export const PLANNED_TABLES = ["jobs", "job_dependencies", "job_history"] as const;
/** One of {@link PLANNED_TABLES}. */
export type PlannedTable = (typeof PLANNED_TABLES)[number];

/** A table that has outgrown its planner statistics. */
export interface StaleTable {
  name: PlannedTable;
  /**
   * Whether this role may analyse it: it owns the table, or owns the
   * database, or is a superuser, or (PostgreSQL 17+) holds MAINTAIN on it.
   */
  analyzable: boolean;
}

/**
 * The tables among `tables` that have grown well past what the planner's
 * statistics say: more than twice the pages (`pg_class.relpages`) or live rows
 * (`pg_class.reltuples`) last recorded, beyond a small floor (8 pages, 1,000
 * rows). Reads only the catalog and the statistics counters: cheap enough to
 * run every second.
 *
 * Why it matters: a prepared statement's generic plan is made once per
 * connection and kept until the table's statistics change. Made while a
 * table was empty (a fresh install, or a drained queue that autovacuum has
 * just analysed), it scans the whole table where an index lookup belongs, and
 * keeps doing so after a burst has filled the table, until autovacuum next
 * analyses it (a minute or more).
 */
export function staleStatistics(db: Sql, tables: readonly PlannedTable[]): Promise<StaleTable[]> {
  return staleStatement.all(db, { tables: tables.map((t) => db.schema.table(t)), names: [...tables] });
}

const staleStatement = statement<{ tables: string[]; names: string[] }, StaleTable>(
  (p) => sql`SELECT t.name,
       pg_has_role(c.relowner, 'USAGE')
         OR pg_has_role((SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE')
         OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
         OR CASE WHEN current_setting('server_version_num')::int >= 170000 THEN has_table_privilege(c.oid, 'MAINTAIN') ELSE false END
         AS analyzable
     FROM unnest(${p.tables}::text[], ${p.names}::text[]) AS t(qualified, name)
     JOIN pg_class c ON c.oid = to_regclass(t.qualified)
     LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
     WHERE pg_relation_size(c.oid) / current_setting('block_size')::int > 2 * GREATEST(c.relpages, 8)
        OR COALESCE(s.n_live_tup, 0) > 2 * GREATEST(c.reltuples, 1000)`,
);

/**
 * Analyses `tables`, skipping any another session holds (autovacuum working
 * on it: it updates the statistics itself, and waiting on it would cancel it).
 * New statistics make every session re-plan its prepared statements that use
 * these tables. A role that does not own a table gets a warning from
 * PostgreSQL, not an error.
 */
export async function analyzeTables(db: Sql, tables: readonly PlannedTable[]): Promise<void> {
  if (tables.length === 0) return;
  const known = new Set<string>(PLANNED_TABLES);
  for (const t of tables) if (!known.has(t)) throw new Error(`analyzeTables: unexpected table ${JSON.stringify(t)}`);
  await analyzeStatement(tables).all(db, {});
}

const analyzeStatement = variants(
  (tables: readonly PlannedTable[]) => tables.join(","),
  (tables) => statement<Record<string, never>, never>(() => sql`ANALYZE (SKIP_LOCKED) ${join(tables.map((t) => sql`${T[t]}`), ", ")}`),
);
