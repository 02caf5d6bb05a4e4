import pg from 'pg';
import type { Logger } from 'pino';

export interface PgListenerOptions {
  databaseUrl: string;
  /** Channels to LISTEN on (plain identifiers). */
  channels: readonly string[];
  onNotification: (channel: string, payload: string) => void;
  /**
   * Called each time the connection is (re)established and listening. Notifications sent
   * while it was down are lost, so listeners resynchronise here.
   */
  onListening?: () => void;
  /** Called when the connection is lost (or stopped). */
  onLost?: () => void;
  logger: Logger;
  /** What is listening, for log lines. */
  name: string;
  retryMs?: number;
}

const identifier = /^[a-z_][a-z0-9_]*$/;

/**
 * One PostgreSQL connection held open for LISTEN, reconnecting until stopped. NOTIFY is
 * how a change made by any replica reaches every process that cares, at commit.
 */
export class PgListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private starting: Promise<void> | undefined;

  constructor(private readonly options: PgListenerOptions) {
    for (const c of options.channels) if (!identifier.test(c)) throw new Error(`Invalid channel name "${c}"`);
  }

  /** Connects and listens, retrying until it works or `stop()` is called. */
  start(): Promise<void> {
    if (this.client || this.stopped) return Promise.resolve();
    this.starting ??= this.connect().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  get listening(): boolean {
    return this.client !== undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
    this.options.onLost?.();
  }

  private async connect(): Promise<void> {
    const { logger, name } = this.options;
    while (!this.stopped) {
      const client = new pg.Client({ connectionString: this.options.databaseUrl });
      try {
        await client.connect();
        client.on('notification', (msg) => {
          if (msg.payload !== undefined) this.options.onNotification(msg.channel, msg.payload);
        });
        client.on('error', (err) => {
          logger.warn({ err: String(err) }, `${name}: listener lost its connection`);
          void client.end().catch(() => undefined);
          if (this.client !== client) return;
          this.client = undefined;
          this.options.onLost?.();
          if (!this.stopped) setTimeout(() => void this.start(), this.options.retryMs ?? 500).unref();
        });
        for (const channel of this.options.channels) await client.query(`listen ${channel}`);
        if (this.stopped) {
          await client.end().catch(() => undefined);
          return;
        }
        this.client = client;
        this.options.onListening?.();
        return;
      } catch (err) {
        await client.end().catch(() => undefined);
        logger.warn({ err: String(err) }, `${name}: listener cannot connect; retrying`);
        await new Promise((r) => setTimeout(r, this.options.retryMs ?? 1000));
      }
    }
  }
}
