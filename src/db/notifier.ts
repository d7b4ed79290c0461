import type { Sql } from "./database";
import { notifyReady } from "./sql/insert";
import { CHANNEL, sql, statement } from "./sql/template";

/**
 * Sends "jobs are ready" notifications, coalesced: while one NOTIFY is in
 * flight, any number of further requests become a single follow-up. NOTIFY
 * takes a global lock at commit, so sending one per insert would cap insert
 * throughput; this keeps latency at one round trip when idle and the cost
 * near zero under load. A lost notification only delays work until the next
 * poll, so errors are reported, not thrown.
 *
 * One insert at a time may instead carry its own notification
 * ({@link ReadyNotifier.carry}): workers are then woken by that insert's
 * commit, without a separate NOTIFY's round trip and commit. A carrier covers
 * only its own rows, so requests never wait for one: at most one carrier and
 * one NOTIFY of this notifier are committing at any time.
 */
export class ReadyNotifier {
  private inFlight = false;
  private again = false;
  private carrying = false;

  constructor(
    private readonly sql: Sql,
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {}

  /** Requests a notification (call it after the commit of the rows it is about). */
  poke(): void {
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.inFlight = true;
    notifyReady(this.sql)
      .catch(this.onError)
      .finally(() => {
        this.inFlight = false;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }

  /**
   * Lets the caller's next statement carry the notification for its own rows
   * (its `pg_notify`, sent at its commit), if no other statement is carrying
   * one: returns the function to call once that statement has finished,
   * however it finished, or `undefined` when the caller must
   * {@link ReadyNotifier.poke} after its commit instead. A carrier that did
   * not send (nothing due when it ran) pokes after its commit too.
   */
  carry(): (() => void) | undefined {
    if (this.carrying) return undefined;
    this.carrying = true;
    return () => {
      this.carrying = false;
    };
  }
}

const announceCancelledStatement = statement<{ ids: string }, { sent: number }>(
  (p) => sql`SELECT 1 AS sent FROM (SELECT pg_notify(${CHANNEL.cancelled}, ${p.ids})) AS n`,
);

/**
 * Announces cancelled jobs to workers, on the schema's `jobs_cancelled` channel (a JSON array of ids per notification,
 * kept under PostgreSQL's 8,000-byte payload limit). A lost notification only
 * delays the abort until the worker's next heartbeat finds the lease gone.
 */
export class CancelNotifier {
  constructor(
    private readonly sql: Sql,
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {}

  send(ids: readonly string[]): void {
    const chunks: string[][] = [[]];
    let size = 2;
    for (const id of ids) {
      const cost = JSON.stringify(id).length + 1;
      if (cost > 7000) continue; // an id this long cannot be announced; the heartbeat catches it
      if (size + cost > 7000) {
        chunks.push([]);
        size = 2;
      }
      chunks[chunks.length - 1].push(id);
      size += cost;
    }
    for (const chunk of chunks) {
      if (chunk.length === 0) continue;
      announceCancelledStatement.all(this.sql, { ids: JSON.stringify(chunk) }).catch(this.onError);
    }
  }
}
