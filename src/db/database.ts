import { createHash } from "node:crypto";
import type pg from "pg";
import { clientSettings } from "./client";
import { SKEIN_TYPES } from "./parsers";
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

const statementNames = new Map<string, string>();

/** A stable name for a statement's text (the same text on every connection gets the same name). */
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (!name) {
    name = `skein_${createHash("sha1").update(text).digest("hex").slice(0, 16)}`;
    statementNames.set(text, name);
  }
  return name;
}

/** The query config for `pg`: named when asked to prepare, with Skein's type parsers. */
function pgQuery(text: string, values: readonly unknown[], options?: QueryOptions): pg.QueryConfig {
  const config: pg.QueryConfig = { text, values: values as unknown[], types: SKEIN_TYPES };
  if (options?.prepare) config.name = statementName(text);
  return config;
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
   * On a pipelining connection (`createPrismaClient` makes them), `BEGIN`
   * goes out with the first statement and `COMMIT` with the one marked
   * `final`, so a transaction of two statements takes two round trips, not
   * four. Each query still has its own reply. A statement the server refuses
   * aborts the transaction, and the `COMMIT` sent behind it ends it as a
   * rollback; `COMMIT` is sent ahead only when the statement's values are
   * plain (strings, numbers, booleans, null, arrays of them), which `pg`
   * cannot fail to send. A final statement's failure fails the transaction
   * even if `fn` catches it, and a connection left inside a transaction is
   * discarded, never returned to the pool.
   */
  async transaction<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    const client = (await this.pool.connect()) as pg.PoolClient & { pipeline?: boolean; getTransactionStatus?: () => string | null };
    const pipelined = client.pipeline === true;
    let broken: Error | undefined;
    // pg-pool removes its own error listener while a client is checked out: a
    // connection cut mid-transaction (server restart, terminated backend) must
    // fail this transaction's query, not crash the process with an unhandled 'error'.
    const onError = (error: Error) => {
      broken = error;
    };
    client.on("error", onError);
    // Set once a COMMIT sent ahead has been answered: the transaction has ended (committed, or
    // rolled back because a statement failed), so no ROLLBACK is needed.
    let ended = false;
    try {
      // Not awaited on a pipelining connection: the first statement waits for it.
      let begin: Promise<unknown> | undefined = client.query("BEGIN");
      if (pipelined) begin.catch(() => undefined); // handled where it is awaited (or by the rollback below)
      else {
        await begin;
        begin = undefined;
      }
      let finalSent = false;
      let finalError: unknown;
      /** Sends COMMIT and checks that it committed (PostgreSQL answers ROLLBACK when a statement had failed). */
      const commitNow = async () => {
        const result = await client.query("COMMIT");
        ended = true;
        if (result.command !== "COMMIT") throw new Error("the transaction was rolled back: a statement in it failed");
      };
      const sql: Sql = {
        schema: this.schema,
        query: async <R>(text: string, values: readonly unknown[] = [], given?: QueryOptions) => {
          const options = this.allowed(given);
          if (finalSent) throw new Error("no statement may follow a transaction's final one (its COMMIT has been sent)");
          const before = begin;
          begin = undefined;
          const reply = client.query(pgQuery(text, values, options));
          const commitAhead = options?.final === true && pipelined && values.every(plainValue);
          if (options?.final) finalSent = true;
          const commit = commitAhead ? client.query("COMMIT") : undefined;
          try {
            // Every reply sent is awaited, so none is left unhandled when one fails.
            const [began, answered, finished] = await Promise.allSettled([before, reply, commit]);
            const commitAnswer = commitAhead && finished.status === "fulfilled" ? (finished.value as pg.QueryResult) : undefined;
            if (commitAnswer) ended = true;
            const committed = commitAnswer?.command === "COMMIT";
            const failure = [began, answered, finished].find((r): r is PromiseRejectedResult => r.status === "rejected");
            if (failure) {
              // Only a reply that failed in this process (a row it could not read) can meet a committed transaction.
              if (committed) throw new Error(`the transaction committed, but its final statement's reply failed: ${String(failure.reason)}`, { cause: failure.reason });
              throw failure.reason;
            }
            if (options?.final && !commitAhead) await commitNow();
            return (answered as PromiseFulfilledResult<pg.QueryResult>).value.rows as R[];
          } catch (error) {
            if (options?.final) finalError = error;
            throw error;
          }
        },
      };
      const value = await fn(sql);
      if (finalError !== undefined) throw finalError; // caught inside fn, but the transaction did not commit as asked
      if (begin) await begin; // the function ran no statement
      if (!finalSent) await commitNow();
      return value;
    } catch (error) {
      if (!ended) {
        // On a pipelining connection this is queued behind anything still unanswered (BEGIN included).
        await client.query("ROLLBACK").catch((rollbackError: Error) => {
          broken = rollbackError;
        });
      }
      throw error;
    } finally {
      client.removeListener("error", onError);
      // A connection that errored, whose rollback failed, or that is somehow still
      // inside a transaction is in an unknown state: discard it.
      const status = client.getTransactionStatus?.();
      if (!broken && (status === "T" || status === "E")) broken = new Error(`connection left inside a transaction (state ${status})`);
      client.release(broken);
    }
  }
}

/** Whether `pg` sends this value as it is (no `toPostgres`, no JSON of an object, nothing that can throw). */
function plainValue(value: unknown): boolean {
  if (value === null || value === undefined) return true;
  const type = typeof value;
  if (type === "string" || type === "number" || type === "boolean") return true;
  return Array.isArray(value) && value.every(plainValue);
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
