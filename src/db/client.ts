import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaClient } from "./generated/prisma/client";
import { SkeinSchema } from "./schema";
import { readDatabaseUrl } from "./url";
import { ValidationError } from "../core/errors";

/** Options for {@link createPrismaClient}. */
export interface PrismaClientOptions {
  /**
   * The PostgreSQL schema holding Skein's tables (as given to `migrate`). A
   * `JobManager`, `Worker` or server built on this client uses it, and so
   * does the client's own typed model API (`prisma.job.findMany()`). A
   * `?schema=` parameter in the URL means the same.
   * @defaultValue "skein"
   */
  schema?: string;
  /**
   * Whether the hot statements may run as named prepared statements. Turn it
   * off when `databaseUrl` goes through a connection pooler in transaction
   * mode (PgBouncer before 1.21 and most hosted poolers), where a named
   * statement prepared on one server connection is missing or clashes on the
   * next. Prisma's `?pgbouncer=true` URL parameter turns it off too, and so
   * does a `directUrl` other than `databaseUrl` (a direct URL beside it says
   * that `databaseUrl` goes through a pooler).
   * @defaultValue true, unless the URL has `pgbouncer=true` or a different `directUrl` is given
   */
  preparedStatements?: boolean;
  /**
   * A URL that reaches PostgreSQL directly, not through a pooler (as Prisma's
   * `directUrl`): a `Worker` built on this client holds its LISTEN
   * connection there. Without one, a client whose URL goes through a
   * transaction-mode pooler (`preparedStatements: false`) polls instead.
   */
  directUrl?: string;
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

/** What Skein knows about a client it made. @internal */
export interface ClientSettings {
  pool: pg.Pool;
  schema: string;
  preparedStatements: boolean;
  /** Where a worker listens: the direct URL, or the pool's own settings when no pooler is in between. */
  listen: pg.ClientConfig | undefined;
}

const clients = new WeakMap<object, ClientSettings>();

/**
 * Creates a Prisma client (Skein's generated client, for its own tables in
 * `schema`) for a PostgreSQL URL, on the `pg` driver adapter.
 *
 * Skein's hot paths (claim, complete) reuse the client's connection pool
 * directly; the typed model API works in the chosen schema. Call
 * `prisma.$disconnect()` to close the pool.
 * @throws {@link ValidationError} for a bad URL, schema or option.
 */
export function createPrismaClient(databaseUrl: string, options: PrismaClientOptions = {}): PrismaClient {
  if (typeof databaseUrl !== "string" || databaseUrl.trim() === "") {
    throw new ValidationError("databaseUrl", "must be a non-empty PostgreSQL connection string");
  }
  const fromUrl = readDatabaseUrl(databaseUrl);
  if (options.schema !== undefined && fromUrl.schema !== undefined && options.schema !== fromUrl.schema) {
    throw new ValidationError("schema", `the option says "${options.schema}" and the URL's ?schema= says "${fromUrl.schema}"`);
  }
  const schema = SkeinSchema.of(options.schema ?? fromUrl.schema);
  if (options.directUrl !== undefined && (typeof options.directUrl !== "string" || options.directUrl.trim() === "")) {
    throw new ValidationError("directUrl", "must be a non-empty PostgreSQL connection string");
  }
  const pooled = fromUrl.pgbouncer || (options.directUrl !== undefined && readDatabaseUrl(options.directUrl).url !== fromUrl.url);
  const preparedStatements = options.preparedStatements ?? !pooled;
  const connection = { application_name: options.applicationName ?? "skein" };
  const pool = new pg.Pool({
    connectionString: fromUrl.url,
    ...connection,
    max: options.maxConnections ?? 10,
    // Queries sent on a connection before the previous ones' replies (Skein's
    // transactions send BEGIN with their first statement and COMMIT with their
    // last); a connection running one query at a time behaves as before.
    pipeline: true,
  });
  // An idle client that errors (server restart, pg_terminate_backend) must not crash the process.
  pool.on("error", (error) => options.onPoolError?.(error));
  const adapter = new PrismaPg(pool, { schema: schema.name, disposeExternalPool: true, onPoolError: options.onPoolError });
  const prisma = new PrismaClient({ adapter });
  // Prisma disposes the pool only if its own engine ever connected; Skein's
  // fast paths use the pool directly, so make $disconnect always close it.
  const disconnect = prisma.$disconnect.bind(prisma);
  prisma.$disconnect = async () => {
    await disconnect();
    if (!pool.ended) await pool.end();
  };
  let listen: pg.ClientConfig | undefined;
  if (options.directUrl !== undefined) listen = { connectionString: readDatabaseUrl(options.directUrl).url, ...connection };
  else if (preparedStatements) listen = { connectionString: fromUrl.url, ...connection };
  clients.set(prisma, { pool, schema: schema.name, preparedStatements, listen });
  return prisma;
}

/** What Skein knows about a client made by {@link createPrismaClient}, if it was made there. @internal */
export function clientSettings(prisma: object): ClientSettings | undefined {
  return clients.get(prisma);
}

/** The `pg` pool behind a client made by {@link createPrismaClient}, if it was made there. @internal */
export function poolOf(prisma: object): pg.Pool | undefined {
  return clients.get(prisma)?.pool;
}

export { PrismaClient };
