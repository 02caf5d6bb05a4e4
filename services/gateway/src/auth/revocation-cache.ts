import { timestampDate } from '@bufbuild/protobuf/wkt';
import type { Client } from '@connectrpc/connect';
import type { Logger } from '@gef/common';
import type { user } from '@gef/protos';

/** How long the gateway trusts what it knows after losing the revocation stream. */
const staleAfterMs = 30_000;

/**
 * Every revocation in force, kept in memory from the user service's WatchRevocations
 * stream. Checking a token costs two map look-ups; a revocation reaches every gateway
 * within milliseconds of being made.
 */
export class RevocationCache {
  private readonly users = new Map<string, { notBefore: number; expiresAt: number }>();
  private readonly sessions = new Map<string, number>();
  private connected = false;
  private disconnectedSince = Date.now();
  private abort = new AbortController();
  private stopped = false;
  private sweeper: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private lastMessageAt = 0;
  private readonly userListeners = new Set<(userId: string | undefined) => void>();
  /** The user service sends a keep-alive every 15 s; silence for this long means a dead stream. */
  private static readonly silenceMs = 45_000;

  constructor(
    private readonly client: Client<typeof user.UserService>,
    private readonly logger: Logger,
  ) {}

  /** Starts following the stream, reconnecting with backoff; resolves once connected or after `waitMs`. */
  start(waitMs = 5000): Promise<void> {
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
    this.watchdog = setInterval(() => {
      if (this.connected && Date.now() - this.lastMessageAt > RevocationCache.silenceMs) {
        this.logger.warn('revocation stream silent; reconnecting');
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
    clearInterval(this.sweeper);
    clearInterval(this.watchdog);
  }

  /**
   * Calls `listener(userId)` when a user's profile, role or tokens change, and
   * `listener(undefined)` when changes may have been missed (the stream was lost or came
   * back). Returns a function that removes the listener.
   */
  onUserChange(listener: (userId: string | undefined) => void): () => void {
    this.userListeners.add(listener);
    return () => this.userListeners.delete(listener);
  }

  private userChanged(userId: string | undefined): void {
    for (const listener of this.userListeners) listener(userId);
  }

  /** True while the stream is up, or was lost only moments ago. */
  get trustworthy(): boolean {
    return this.connected || Date.now() - this.disconnectedSince < staleAfterMs;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  private async follow(): Promise<void> {
    let delay = 200;
    while (!this.stopped) {
      this.abort = new AbortController();
      try {
        const stream = this.client.watchRevocations({}, { signal: this.abort.signal, timeoutMs: 0 });
        let first = true;
        for await (const res of stream) {
          this.lastMessageAt = Date.now();
          if (first) {
            this.userChanged(undefined);
            this.connected = true;
            first = false;
            delay = 200;
            this.logger.info('following token revocations');
          }
          this.apply(res.revocation);
          if (res.changedUserId) this.userChanged(res.changedUserId);
        }
      } catch (err) {
        if (this.stopped) return;
        this.logger.warn({ reason: err instanceof Error ? err.message : String(err) }, 'revocation stream lost; reconnecting');
      }
      if (this.connected) this.disconnectedSince = Date.now();
      this.connected = false;
      this.userChanged(undefined);
      await new Promise((r) => setTimeout(r, delay).unref());
      delay = Math.min(delay * 2, 5000);
    }
  }

  private apply(r: user.Revocation | undefined): void {
    if (!r?.notBefore || !r.expiresAt) return;
    const notBefore = timestampDate(r.notBefore).getTime();
    const expiresAt = timestampDate(r.expiresAt).getTime();
    if (r.target.case === 'userId') {
      const current = this.users.get(r.target.value);
      if (!current || current.notBefore < notBefore) this.users.set(r.target.value, { notBefore, expiresAt });
      // Logout-all, a role change, disabling or deletion: what is known of the user is stale.
      this.userChanged(r.target.value);
    } else if (r.target.case === 'sessionId') {
      this.sessions.set(r.target.value, expiresAt);
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, v] of this.users) if (v.expiresAt < now) this.users.delete(k);
    for (const [k, v] of this.sessions) if (v < now) this.sessions.delete(k);
  }

  /** Whether a token (its user, session and `iat` in seconds) has been revoked. */
  isRevoked(userId: string, sessionId: string, issuedAtSeconds: number): boolean {
    if (sessionId && this.sessions.has(sessionId)) return true;
    const u = this.users.get(userId);
    return !!u && issuedAtSeconds * 1000 < u.notBefore;
  }
}
