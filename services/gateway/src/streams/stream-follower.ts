import type { Logger } from '@gef/common';

export interface StreamFollowerOptions<M> {
  /** What is followed, for log lines. */
  name: string;
  /** Opens the server stream (a fresh call each time). */
  open: (signal: AbortSignal) => AsyncIterable<M>;
  onMessage: (message: M) => void;
  /**
   * Whether a message shows the stream caught up (a service that first sends its backlog
   * then says so). Until a stream's first such message it does not count as connected, and
   * a follower that has never been caught up counts as down since ever. Default: any message.
   */
  caughtUp?: (message: M) => boolean;
  /**
   * Called when messages may have been missed: the stream was lost, or it came back (just
   * before its first message is handled).
   */
  onGap?: () => void;
  logger: Logger;
  /** The service sends a keep-alive every 15 s; silence for this long means a dead stream. */
  silenceMs?: number;
  /**
   * Messages after which a stream is replaced by a fresh one (see `follow`). The Connect
   * client races every read of a server stream against a promise that settles only when the
   * call ends, and each race leaves a reaction on it holding that read's result: a stream
   * that lives as long as the process keeps every message it ever received.
   */
  renewAfterMessages?: number;
}

/** A stream being read: its call's abort and its messages. */
interface OpenStream<M> {
  abort: AbortController;
  messages: AsyncIterator<M>;
}

/**
 * Follows a service's server stream for as long as the process lives: reconnects with
 * backoff when it ends or fails, and drops it when it falls silent (a half-open
 * connection would otherwise look alive forever).
 */
export class StreamFollower<M> {
  private connected = false;
  /** Down since ever until a first stream has caught up. */
  private disconnectedSince = Number.NEGATIVE_INFINITY;
  private abort = new AbortController();
  private stopped = false;
  private watchdog: NodeJS.Timeout | undefined;
  private lastMessageAt = 0;
  /** A stream is open and read (caught up or not). */
  private reading = false;

  constructor(private readonly options: StreamFollowerOptions<M>) {}

  /** Starts following; resolves once connected (caught up), or after `waitMs` whatever happens. */
  start(waitMs = 5000): Promise<void> {
    const silenceMs = this.options.silenceMs ?? 45_000;
    this.watchdog = setInterval(() => {
      if (this.reading && Date.now() - this.lastMessageAt > silenceMs) {
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

  /** How long the stream has been down (0 while connected; Infinity until it first caught up). */
  get downForMs(): number {
    return this.connected ? 0 : Date.now() - this.disconnectedSince;
  }

  private openStream(): OpenStream<M> {
    const abort = new AbortController();
    return { abort, messages: this.options.open(abort.signal)[Symbol.asyncIterator]() };
  }

  /**
   * Reads streams one after the other. A stream that ends or fails is replaced after a
   * backoff, with a gap (`onGap`: messages may have been missed). One that has delivered
   * `renewAfterMessages` since it caught up is replaced without a gap, make before break:
   * the next stream is opened while this one is still read, and this one is ended only once
   * the next has sent its first message (the next one replays from its opening what this one
   * has said, and says what comes after; a message both carry is handled twice, which their
   * consumers take as the same news).
   */
  private async follow(): Promise<void> {
    const { logger, name } = this.options;
    const renewAfter = this.options.renewAfterMessages ?? 1000;
    const caughtUp = this.options.caughtUp ?? (() => true);
    let delay = 200;
    /** The stream that replaces the current one, with its first message (set by a renewal). */
    const takeOver: { next?: { stream: OpenStream<M>; first: M } } = {};
    while (!this.stopped) {
      const handover = takeOver.next;
      takeOver.next = undefined;
      const current = handover?.stream ?? this.openStream();
      let pending = handover?.first;
      let first = handover === undefined;
      /**
       * This stream has caught up. Only then does it count messages towards its renewal: a
       * backlog longer than `renewAfterMessages` would otherwise renew a stream before it
       * caught up, and every stream after it, replaying the backlog, the same (the follower
       * never in sync). A renewal thus starts from a caught-up stream, with the follower
       * connected, and hands over to a stream whose backlog replays from there.
       */
      let synced = false;
      this.abort = current.abort;
      this.reading = true;
      if (!handover) this.lastMessageAt = Date.now();
      let count = 0;
      let renewing = false;
      try {
        for (;;) {
          let message: M;
          if (pending !== undefined) {
            message = pending;
            pending = undefined;
          } else {
            const next = await current.messages.next();
            if (next.done) break;
            message = next.value;
          }
          this.lastMessageAt = Date.now();
          if (first) {
            this.options.onGap?.();
            first = false;
          }
          this.options.onMessage(message);
          if (!synced && caughtUp(message)) {
            synced = true;
            if (!this.connected) {
              this.connected = true;
              delay = 200;
              logger.info(`${name}: following`);
            }
          }
          if (synced && ++count >= renewAfter && !renewing) {
            renewing = true;
            void this.renew(current).then((next) => {
              if (!next) {
                // Try again after as many messages more.
                renewing = false;
                count = 0;
                return;
              }
              takeOver.next = next;
              current.abort.abort();
            });
          }
        }
      } catch (err) {
        if (!takeOver.next && !this.stopped) logger.warn({ reason: err instanceof Error ? err.message : String(err) }, `${name}: stream lost; reconnecting`);
      }
      this.reading = false;
      if (this.stopped) break;
      if (takeOver.next) continue;
      if (this.connected) this.disconnectedSince = Date.now();
      this.connected = false;
      this.options.onGap?.();
      await new Promise((r) => setTimeout(r, delay).unref());
      delay = Math.min(delay * 2, 5000);
    }
    // Stopped just as a renewal handed over: its stream goes too.
    takeOver.next?.stream.abort.abort();
  }

  /**
   * Opens the stream that replaces `current`; resolves once it has sent its first message,
   * or undefined (the new stream ended) when it failed first, or when `current` ended or the
   * follower stopped meanwhile.
   */
  private async renew(current: OpenStream<M>): Promise<{ stream: OpenStream<M>; first: M } | undefined> {
    const next = this.openStream();
    try {
      const first = await next.messages.next();
      if (!first.done && !current.abort.signal.aborted && !this.stopped) return { stream: next, first: first.value };
    } catch {
      // This stream keeps going; the next renewal tries again.
    }
    next.abort.abort();
    return undefined;
  }
}
