/** What a connection URL says beyond where to connect (Prisma's own URL parameters). */
export interface UrlSettings {
  /** The URL without Skein's and Prisma's parameters, as `pg` should see it. */
  url: string;
  /** `?schema=` (Prisma's parameter for the schema to use). */
  schema?: string;
  /** `?pgbouncer=true` (Prisma's flag for a pooler in transaction mode: no named prepared statements). */
  pgbouncer: boolean;
}

/** Reads `schema` and `pgbouncer` off a PostgreSQL URL, as Prisma does, and removes them. */
export function readDatabaseUrl(databaseUrl: string): UrlSettings {
  let parsed: URL;
  try {
    parsed = new URL(databaseUrl);
  } catch {
    return { url: databaseUrl, pgbouncer: false };
  }
  const schema = parsed.searchParams.get("schema") ?? undefined;
  const pgbouncer = parsed.searchParams.get("pgbouncer") === "true";
  if (!parsed.searchParams.has("schema") && !parsed.searchParams.has("pgbouncer")) return { url: databaseUrl, pgbouncer: false };
  parsed.searchParams.delete("schema");
  parsed.searchParams.delete("pgbouncer");
  return { url: parsed.toString(), schema, pgbouncer };
}
