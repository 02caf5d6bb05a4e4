import pg from 'pg';
import type { Logger } from 'pino';
import { describeError } from './logger';
import { within } from './within';

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
  /** Called when the connection is lost (or stopped), a silently dead one included. */
  onLost?: () => void;
  logger: Logger;
  /** What is listening, for log lines. */
  name: string;
  retryMs?: number;
  /**
   * How often the connection is asked whether it is alive (`select 1`), in ms; 0: never.
   * A path to the database that dies without FIN or RST (a failover moving the address, a
   * dropped NAT or firewall entry) raises no error: without this the listener would wait
   * for notifications that never come, for good. Default 15 s.
   */
  probeIntervalMs?: number;
  /** How long a probe (and connecting, and each LISTEN) may take before the connection counts as lost. Default 5 s. */
  probeTimeoutMs?: number;
}

const identifier = /^[a-z_][a-z0-9_]*$/;

export const defaultProbeIntervalMs = 15_000;
export const defaultProbeTimeoutMs = 5_000;
/** Idle time before the kernel's first TCP keep-alive probe on the listener's socket. */
const keepAliveInitialDelayMs = 10_000;

/** The `application_name` of the listeners' connections. */
export const listenerApplicationName = 'gef-listener';

/**
 * One PostgreSQL connection held open for LISTEN, reconnecting until stopped. NOTIFY is
 * how a change made by any replica reaches every process that cares, at commit.
 *
 * The connection is checked, not trusted: TCP keep-alive on its socket, and a `select 1`
 * every `probeIntervalMs` that must answer within `probeTimeoutMs`. A failed or late probe
 * counts as a lost connection (`onLost`, then a new connection and `onListening`), so a
 * silently dead path costs its listeners at most one interval plus one timeout.
 */
export class PgListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private starting: Promise<void> | undefined;
  private probeTimer: NodeJS.Timeout | undefined;

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

  /** Connected and listening, as far as the last liveness probe knows. */
  get listening(): boolean {
    return this.client !== undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.probeTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
    this.options.onLost?.();
  }

  private get probeTimeoutMs(): number {
    return this.options.probeTimeoutMs ?? defaultProbeTimeoutMs;
  }

  private async connect(): Promise<void> {
    const { logger, name } = this.options;
    while (!this.stopped) {
      const client = new pg.Client({
        connectionString: this.options.databaseUrl,
        // The kernel notices a dead peer on an idle socket too (the probe is what bounds it).
        keepAlive: true,
        keepAliveInitialDelayMillis: keepAliveInitialDelayMs,
        connectionTimeoutMillis: this.probeTimeoutMs * 2,
        // Known as what it is in pg_stat_activity (operators; the tests that end it).
        application_name: listenerApplicationName,
      });
      try {
        await client.connect();
        client.on('notification', (msg) => {
          if (msg.payload !== undefined) this.options.onNotification(msg.channel, msg.payload);
        });
        client.on('error', (err) => this.lose(client, err, 'listener lost its connection'));
        for (const channel of this.options.channels) await within(client.query(`listen ${channel}`), this.probeTimeoutMs, `listen ${channel}: no answer within ${this.probeTimeoutMs} ms`);
        if (this.stopped) {
          await client.end().catch(() => undefined);
          return;
        }
        this.client = client;
        this.scheduleProbe(client);
        this.options.onListening?.();
        return;
      } catch (err) {
        await client.end().catch(() => undefined);
        logger.warn({ err: describeError(err) }, `${name}: listener cannot connect; retrying`);
        await new Promise((r) => setTimeout(r, this.options.retryMs ?? 1000));
      }
    }
  }

  /** Asks the connection whether it is alive after the interval, and again while it is. */
  private scheduleProbe(client: pg.Client): void {
    const interval = this.options.probeIntervalMs ?? defaultProbeIntervalMs;
    if (interval <= 0) return;
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => {
      if (this.client !== client) return;
      within(client.query('select 1'), this.probeTimeoutMs, `liveness probe: no answer within ${this.probeTimeoutMs} ms`).then(
        () => {
          if (this.client === client && !this.stopped) this.scheduleProbe(client);
        },
        (err: unknown) => this.lose(client, err, 'listener connection failed its liveness probe'),
      );
    }, interval);
    this.probeTimer.unref();
  }

  /** The connection is gone (or as good as): drop it, tell the listeners, connect again. */
  private lose(client: pg.Client, err: unknown, why: string): void {
    // A client with a query in flight (a hung probe) is destroyed, not asked to close.
    void client.end().catch(() => undefined);
    if (this.client !== client) return;
    clearTimeout(this.probeTimer);
    this.client = undefined;
    this.options.logger.warn({ err: describeError(err) }, `${this.options.name}: ${why}; reconnecting`);
    this.options.onLost?.();
    if (!this.stopped) setTimeout(() => void this.start(), this.options.retryMs ?? 500).unref();
  }
}
