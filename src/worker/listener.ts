import pg from "pg";
import type { Logger } from "../core/logger";
import { backoffMs, type Clock } from "../core/clock";

/**
 * One dedicated LISTEN connection. NOTIFY is a hint: when the connection
 * drops (database restart, terminated backend) it reconnects with backoff and
 * jitter and calls `onReconnect` so the worker catches up on anything it
 * missed; the worker's poll is the guarantee.
 */
export class ReadyListener {
  private client: pg.Client | undefined;
  private stopped = true;
  private attempt = 0;
  private retryTimer: unknown;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly channels: Record<string, (payload: string) => void>,
    private readonly handlers: { onReconnect: () => void },
    private readonly options: { clock: Clock; logger: Logger; random: () => number },
  ) {}

  /** Connects; resolves once listening (or once the first attempt failed and a retry is scheduled). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.connect(false);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.options.clock.clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async connect(isReconnect: boolean): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ ...this.config, application_name: "skein-listener" });
    client.on("notification", (message) => this.channels[message.channel]?.(message.payload ?? ""));
    client.on("error", (error) => this.lost(client, error));
    client.on("end", () => this.lost(client, new Error("connection ended")));
    try {
      await client.connect();
      for (const channel of Object.keys(this.channels)) await client.query(`LISTEN ${client.escapeIdentifier(channel)}`);
      if (this.stopped) {
        await client.end().catch(() => undefined);
        return;
      }
      this.client = client;
      this.attempt = 0;
      if (isReconnect) {
        this.options.logger.info("listener reconnected");
        this.handlers.onReconnect();
      }
    } catch (error) {
      await client.end().catch(() => undefined);
      this.scheduleReconnect(error);
    }
  }

  private lost(client: pg.Client, error: unknown): void {
    if (this.client !== client || this.stopped) return;
    this.client = undefined;
    client.end().catch(() => undefined);
    this.scheduleReconnect(error);
  }

  private scheduleReconnect(error: unknown): void {
    if (this.stopped) return;
    const delay = backoffMs(this.attempt++, 100, 5000, this.options.random);
    this.options.logger.warn("listener connection lost; reconnecting", { error: String(error), retryInMs: delay });
    this.retryTimer = this.options.clock.setTimeout(() => void this.connect(true), delay);
  }
}
