import type { Sql } from "./database";
import { notifyReady } from "./sql/insert";

/**
 * Sends "jobs are ready" notifications, coalesced: while one NOTIFY is in
 * flight, any number of further requests become a single follow-up. NOTIFY
 * takes a global lock at commit, so sending one per insert would cap insert
 * throughput; this keeps latency at one round trip when idle and the cost
 * near zero under load. A lost notification only delays work until the next
 * poll, so errors are reported, not thrown.
 */
export class ReadyNotifier {
  private inFlight = false;
  private again = false;

  constructor(
    private readonly sql: Sql,
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {}

  /** Requests a notification. */
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
}
