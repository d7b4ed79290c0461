import type pg from "pg";
import { clientSettings } from "./client";
import { pgQuery } from "./pg-query";
import { runPooledTransaction } from "./pool-transaction";
import { SkeinSchema } from "./schema";
import { ValidationError } from "../core/errors";

/** Anything that runs one SQL statement with positional parameters ($1, $2...), for one Skein schema. */
export interface Sql {
  /** The schema whose tables the statements name (see `db/sql/template.ts`). */
  readonly schema: SkeinSchema;
  /**
   * Runs a statement. With `prepare`, the `pg` path runs it as a named
   * prepared statement (parsed and planned once per connection) unless the
   * client was made with `preparedStatements: false` (a pooler in
   * transaction mode): for the hot statements that run thousands of times.
   */
  query<R>(text: string, values?: readonly unknown[], options?: QueryOptions): Promise<R[]>;
}

/** Options for {@link Sql.query}. */
export interface QueryOptions {
  /** Run as a named prepared statement on the `pg` path. */
  prepare?: boolean;
  /**
   * The last statement of a {@link Database.transaction}: on the `pg` path its
   * `COMMIT` is sent right behind it, without waiting for its reply (one round
   * trip for both), and it resolves once the transaction has committed. The
   * transaction's function must run no statement after it. Elsewhere (Prisma,
   * a caller's transaction, outside a transaction) it changes nothing.
   */
  final?: boolean;
}

/** A Prisma client or interactive-transaction client: the subset Skein uses for raw SQL. */
export interface RawQueryClient {
  $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): Promise<T>;
}

/** A Prisma client that can open interactive transactions. */
export interface TransactionalClient extends RawQueryClient {
  $transaction<R>(fn: (tx: never) => Promise<R>, options?: { maxWait?: number; timeout?: number }): Promise<R>;
}

/**
 * The one seam between Skein and PostgreSQL: every hand-written statement runs
 * through a `Database`. Two implementations exist: one over the `pg` pool of a
 * client made by `createPrismaClient` (fast path, no Prisma layer), and one over
 * any Prisma client or transaction client (used for `{ tx }` and for clients the
 * caller built themselves). Both return rows the same way: jsonb parsed,
 * timestamps as `Date`, integers as `number` (statements cast counts to int).
 */
export interface Database extends Sql {
  /** Runs `fn` inside one transaction (or inside the caller's transaction, if this database is one). */
  transaction<T>(fn: (sql: Sql) => Promise<T>): Promise<T>;
}

class PoolDatabase implements Database {
  constructor(
    private readonly pool: pg.Pool,
    readonly schema: SkeinSchema,
    private readonly prepared: boolean,
  ) {}

  async query<R>(text: string, values: readonly unknown[] = [], options?: QueryOptions): Promise<R[]> {
    const result = await this.pool.query(pgQuery(text, values, this.allowed(options)));
    return result.rows as R[];
  }

  /** The options as this connection may honour them: no named statements behind a transaction-mode pooler. */
  private allowed(options: QueryOptions | undefined): QueryOptions | undefined {
    return options?.prepare && !this.prepared ? { ...options, prepare: false } : options;
  }

  /**
   * One transaction on a pooled connection; on a pipelining one (as
   * `createPrismaClient` makes them) `BEGIN` and `COMMIT` ride with the first
   * and the final statement (see `PooledTransaction`).
   */
  transaction<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    return runPooledTransaction(this.pool, this.schema, (options) => this.allowed(options), fn);
  }
}

class PrismaDatabase implements Database {
  constructor(
    private readonly client: RawQueryClient,
    private readonly inTransaction: boolean,
    readonly schema: SkeinSchema,
  ) {}

  query<R>(text: string, values: readonly unknown[] = []): Promise<R[]> {
    return this.client.$queryRawUnsafe<R[]>(text, ...values);
  }

  transaction<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    if (this.inTransaction) return fn(this);
    const client = this.client as TransactionalClient;
    return client.$transaction((tx: never) => fn(new PrismaDatabase(tx as RawQueryClient, true, this.schema)), {
      maxWait: 10_000,
      timeout: 120_000,
    });
  }
}

/**
 * The schema for a client: the one `createPrismaClient` made it for, or the
 * one asked for (which must then agree), or the default.
 * @throws {@link ValidationError} when the two disagree.
 */
export function schemaFor(prisma: object, requested?: string): SkeinSchema {
  const made = clientSettings(prisma)?.schema;
  if (requested !== undefined && made !== undefined && requested !== made) {
    throw new ValidationError("schema", `the client was made for schema "${made}" (createPrismaClient), not "${requested}"`);
  }
  return SkeinSchema.of(requested ?? made);
}

/**
 * The {@link Database} for a Prisma client and a schema (see
 * {@link schemaFor}): its `pg` pool when it was made by `createPrismaClient`,
 * else the client itself.
 */
export function databaseFor(prisma: RawQueryClient, schema?: string): Database {
  const resolved = schemaFor(prisma, schema);
  const settings = clientSettings(prisma);
  return settings ? new PoolDatabase(settings.pool, resolved, settings.preparedStatements) : new PrismaDatabase(prisma, false, resolved);
}

/** A {@link Database} that runs everything inside the caller's open Prisma transaction. */
export function databaseInTransaction(tx: RawQueryClient, schema: SkeinSchema): Database {
  return new PrismaDatabase(tx, true, schema);
}

/** The PostgreSQL error code (SQLSTATE) of an error from `pg` or Prisma, if it has one. */
export function sqlState(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const e = error as { code?: unknown; meta?: { code?: unknown; driverAdapterError?: { cause?: { originalCode?: unknown } } }; cause?: unknown };
  if (typeof e.code === "string" && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  const original = e.meta?.driverAdapterError?.cause?.originalCode;
  if (typeof original === "string") return original;
  if (typeof e.meta?.code === "string" && /^[0-9A-Z]{5}$/.test(e.meta.code)) return e.meta.code;
  return e.cause ? sqlState(e.cause) : undefined;
}

/** SQLSTATE codes Skein reacts to. */
export const SqlState = {
  uniqueViolation: "23505",
  foreignKeyViolation: "23503",
  deadlockDetected: "40P01",
  serializationFailure: "40001",
  undefinedTable: "42P01",
} as const;
