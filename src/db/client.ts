import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaClient } from "./generated/prisma/client";

/** Options for {@link createPrismaClient}. */
export interface PrismaClientOptions {
  /**
   * Most connections the client's pool opens.
   * @defaultValue 10
   */
  maxConnections?: number;
  /** Name shown in `pg_stat_activity.application_name`. @defaultValue "skein" */
  applicationName?: string;
  /** Called when an idle pooled connection fails (for example when the server restarts). */
  onPoolError?: (error: Error) => void;
}

const pools = new WeakMap<object, pg.Pool>();

/**
 * Creates a Prisma client for a PostgreSQL URL, on the `pg` driver adapter.
 *
 * Skein's hot paths (claim, complete) reuse the client's connection pool
 * directly; every other read and write goes through Prisma. Call
 * `prisma.$disconnect()` to close the pool.
 */
export function createPrismaClient(databaseUrl: string, options: PrismaClientOptions = {}): PrismaClient {
  if (typeof databaseUrl !== "string" || databaseUrl.trim() === "") {
    throw new TypeError("createPrismaClient: databaseUrl must be a non-empty PostgreSQL connection string");
  }
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: options.maxConnections ?? 10,
    application_name: options.applicationName ?? "skein",
    // Queries sent on a connection before the previous ones' replies (Skein's
    // transactions send BEGIN with their first statement and COMMIT with their
    // last); a connection running one query at a time behaves as before.
    pipeline: true,
  });
  // An idle client that errors (server restart, pg_terminate_backend) must not crash the process.
  pool.on("error", (error) => options.onPoolError?.(error));
  const adapter = new PrismaPg(pool, { disposeExternalPool: true, onPoolError: options.onPoolError });
  const prisma = new PrismaClient({ adapter });
  // Prisma disposes the pool only if its own engine ever connected; Skein's
  // fast paths use the pool directly, so make $disconnect always close it.
  const disconnect = prisma.$disconnect.bind(prisma);
  prisma.$disconnect = async () => {
    await disconnect();
    if (!pool.ended) await pool.end();
  };
  pools.set(prisma, pool);
  return prisma;
}

/** The `pg` pool behind a client made by {@link createPrismaClient}, if it was made there. @internal */
export function poolOf(prisma: object): pg.Pool | undefined {
  return pools.get(prisma);
}

export { PrismaClient };
