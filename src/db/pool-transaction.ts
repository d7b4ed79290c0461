import type pg from "pg";
import type { QueryOptions, Sql } from "./database";
import { pgQuery, plainValue } from "./pg-query";
import type { SkeinSchema } from "./schema";

type Client = pg.PoolClient & { pipeline?: boolean; getTransactionStatus?: () => string | null };

/** Runs `fn` in one transaction on a connection of `pool`. */
export async function runPooledTransaction<T>(pool: pg.Pool, schema: SkeinSchema, allowed: (options?: QueryOptions) => QueryOptions | undefined, fn: (sql: Sql) => Promise<T>): Promise<T> {
  return new PooledTransaction((await pool.connect()) as Client, schema, allowed).run(fn);
}

/**
 * A transaction on a pooled connection. On a pipelining connection `BEGIN`
 * goes out with the first statement and `COMMIT` with the one marked
 * `final`, so a transaction of two statements takes two round trips, not four
 * (a chain's step measured 12% faster; docs/BENCHMARKS.md). Each query still
 * has its own reply. A statement the server refuses aborts the transaction,
 * and the `COMMIT` sent behind it ends it as a rollback; `COMMIT` is sent
 * ahead only when the statement's values are plain, which `pg` cannot fail to
 * send. A final statement's failure fails the transaction even if `fn`
 * catches it, and a connection left inside a transaction is discarded, never
 * returned to the pool.
 */
class PooledTransaction {
  private readonly pipelined: boolean;
  /** The connection failed: discard it. */
  private broken: Error | undefined;
  /** `BEGIN` sent and not yet awaited (the first statement awaits it). */
  private begin: Promise<unknown> | undefined;
  private finalSent = false;
  private finalError: unknown;
  /** A `COMMIT` was answered: the transaction has ended (committed, or rolled back because a statement failed). */
  private ended = false;
  // pg-pool removes its own error listener while a client is checked out: a connection cut
  // mid-transaction (server restart, terminated backend) fails this transaction, not the process.
  private readonly onError = (error: Error) => {
    this.broken = error;
  };

  constructor(
    private readonly client: Client,
    private readonly schema: SkeinSchema,
    private readonly allowed: (options?: QueryOptions) => QueryOptions | undefined,
  ) {
    this.pipelined = client.pipeline === true;
    client.on("error", this.onError);
  }

  async run<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    try {
      this.begin = this.client.query("BEGIN");
      if (this.pipelined) this.begin.catch(() => undefined); // handled where it is awaited (or by the rollback)
      else await this.takeBegin();
      const value = await fn({ schema: this.schema, query: (text, values, options) => this.query(text, values, options) });
      if (this.finalError !== undefined) throw this.finalError; // caught inside fn, but the transaction did not commit as asked
      await this.takeBegin(); // fn ran no statement
      if (!this.finalSent) await this.commitNow();
      return value;
    } catch (error) {
      // On a pipelining connection this is queued behind anything still unanswered (BEGIN included).
      if (!this.ended) await this.client.query("ROLLBACK").catch((rollbackError: Error) => (this.broken = rollbackError));
      throw error;
    } finally {
      this.release();
    }
  }

  private async query<R>(text: string, values: readonly unknown[] = [], given?: QueryOptions): Promise<R[]> {
    const options = this.allowed(given);
    const final = options?.final === true;
    if (this.finalSent) throw new Error("no statement may follow a transaction's final one (its COMMIT has been sent)");
    const before = this.begin;
    this.begin = undefined;
    const reply = this.client.query(pgQuery(text, values, options));
    const commitAhead = final && this.pipelined && values.every(plainValue);
    if (final) this.finalSent = true;
    const commit = commitAhead ? this.client.query("COMMIT") : undefined;
    try {
      const rows = await this.settle(before, reply, commit);
      if (final && !commitAhead) await this.commitNow();
      return rows as R[];
    } catch (error) {
      if (final) this.finalError = error;
      throw error;
    }
  }

  /** Awaits every reply sent (none is left unhandled when one fails) and returns the statement's rows. */
  private async settle(before: Promise<unknown> | undefined, reply: Promise<pg.QueryResult>, commit: Promise<pg.QueryResult> | undefined): Promise<unknown[]> {
    const [began, answered, finished] = await Promise.allSettled([before, reply, commit]);
    const commitAnswer = commit !== undefined && finished.status === "fulfilled" ? (finished.value as pg.QueryResult) : undefined;
    if (commitAnswer) this.ended = true;
    const failure = [began, answered, finished].find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failure) {
      // Only a reply that failed in this process (a row it could not read) can meet a committed transaction.
      if (commitAnswer?.command === "COMMIT") throw new Error(`the transaction committed, but its final statement's reply failed: ${String(failure.reason)}`, { cause: failure.reason });
      throw failure.reason;
    }
    return (answered as PromiseFulfilledResult<pg.QueryResult>).value.rows;
  }

  private async takeBegin(): Promise<void> {
    const begin = this.begin;
    this.begin = undefined;
    if (begin) await begin;
  }

  /** Sends COMMIT and checks that it committed (PostgreSQL answers ROLLBACK when a statement had failed). */
  private async commitNow(): Promise<void> {
    const result = await this.client.query("COMMIT");
    this.ended = true;
    if (result.command !== "COMMIT") throw new Error("the transaction was rolled back: a statement in it failed");
  }

  /** Returns the connection to the pool, or discards it when it errored, its rollback failed, or it is somehow still inside a transaction. */
  private release(): void {
    this.client.removeListener("error", this.onError);
    const status = this.client.getTransactionStatus?.();
    if (!this.broken && (status === "T" || status === "E")) this.broken = new Error(`connection left inside a transaction (state ${status})`);
    this.client.release(this.broken);
  }
}
