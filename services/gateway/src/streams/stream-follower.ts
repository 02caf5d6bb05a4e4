import type { Logger } from '@gef/common';

export interface StreamFollowerOptions<M> {
  /** What is followed, for log lines. */
  name: string;
  /** Opens the server stream (a fresh call each time). */
  open: (signal: AbortSignal) => AsyncIterable<M>;
  onMessage: (message: M) => void;
  /**
   * Called when messages may have been missed: the stream was lost, or it came back (just
   * before its first message is handled).
   */
  onGap?: () => void;
  logger: Logger;
  /** The service sends a keep-alive every 15 s; silence for this long means a dead stream. */
  silenceMs?: number;
}

/**
 * Follows a service's server stream for as long as the process lives: reconnects with
 * backoff when it ends or fails, and drops it when it falls silent (a half-open
 * connection would otherwise look alive forever).
 */
export class StreamFollower<M> {
  private connected = false;
  private disconnectedSince = Date.now();
  private abort = new AbortController();
  private stopped = false;
  private watchdog: NodeJS.Timeout | undefined;
  private lastMessageAt = 0;

  constructor(private readonly options: StreamFollowerOptions<M>) {}

  /** Starts following; resolves once connected, or after `waitMs` whatever happens. */
  start(waitMs = 5000): Promise<void> {
    const silenceMs = this.options.silenceMs ?? 45_000;
    this.watchdog = setInterval(() => {
      if (this.connected && Date.now() - this.lastMessageAt > silenceMs) {
        this.options.logger.warn(`${this.options.name}: stream silent; reconnecting`);
        this.abort.abort();
      }
    }, 5_000);
    this.watchdog.unref();
    void this.follow();
    return new Promise((resolve) => {
      const started = Date.now();
      const check = () => {
        if (this.connected || Date.now() - started > waitMs || this.stopped) resolve();
        else setTimeout(check, 50);
      };
      check();
    });
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
    clearInterval(this.watchdog);
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** How long the stream has been down (0 while connected). */
  get downForMs(): number {
    return this.connected ? 0 : Date.now() - this.disconnectedSince;
  }

  private async follow(): Promise<void> {
    const { logger, name } = this.options;
    let delay = 200;
    while (!this.stopped) {
      this.abort = new AbortController();
      try {
        let first = true;
        for await (const message of this.options.open(this.abort.signal)) {
          this.lastMessageAt = Date.now();
          if (first) {
            this.options.onGap?.();
            this.connected = true;
            first = false;
            delay = 200;
            logger.info(`${name}: following`);
          }
          this.options.onMessage(message);
        }
      } catch (err) {
        if (this.stopped) return;
        logger.warn({ reason: err instanceof Error ? err.message : String(err) }, `${name}: stream lost; reconnecting`);
      }
      if (this.connected) this.disconnectedSince = Date.now();
      this.connected = false;
      this.options.onGap?.();
      await new Promise((r) => setTimeout(r, delay).unref());
      delay = Math.min(delay * 2, 5000);
    }
  }
}
