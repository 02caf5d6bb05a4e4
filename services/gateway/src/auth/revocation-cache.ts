import { timestampDate } from '@bufbuild/protobuf/wkt';
import type { Client } from '@connectrpc/connect';
import type { Logger } from '@gef/common';
import type { user } from '@gef/protos';
import { StreamFollower } from '../streams/stream-follower';

/** How long the gateway trusts what it knows after losing the revocation stream. */
const staleAfterMs = 30_000;

/**
 * Every revocation in force, kept in memory from the user service's WatchRevocations
 * stream. Checking a token costs two map look-ups; a revocation reaches every gateway
 * within milliseconds of being made. The same stream names users whose profile changed.
 */
export class RevocationCache {
  private readonly users = new Map<string, { notBefore: number; expiresAt: number }>();
  private readonly sessions = new Map<string, number>();
  private readonly stream: StreamFollower<user.WatchRevocationsResponse>;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly userListeners = new Set<(userId: string | undefined) => void>();

  constructor(client: Client<typeof user.UserService>, logger: Logger) {
    this.stream = new StreamFollower({
      name: 'token revocations',
      open: (signal) => client.watchRevocations({}, { signal, timeoutMs: 0 }),
      onMessage: (res) => {
        this.apply(res.revocation);
        if (res.changedUserId) this.userChanged(res.changedUserId);
      },
      onGap: () => this.userChanged(undefined),
      // The service sends every revocation in force, then an empty message.
      caughtUp: (res) => !res.revocation && !res.changedUserId,
      logger,
    });
  }

  /** Starts following the stream, reconnecting with backoff; resolves once connected or after `waitMs`. */
  start(waitMs = 5000): Promise<void> {
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
    return this.stream.start(waitMs);
  }

  stop(): void {
    this.stream.stop();
    clearInterval(this.sweeper);
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

  /**
   * True while the stream is up, or was lost only moments ago; never before it first
   * caught up (a gateway that has not yet heard the revocations in force cannot tell a
   * revoked token, so it answers 503 rather than accept one).
   */
  get trustworthy(): boolean {
    return this.stream.downForMs < staleAfterMs;
  }

  get isConnected(): boolean {
    return this.stream.isConnected;
  }

  private apply(r: user.Revocation | undefined): void {
    if (!r?.notBefore || !r.expiresAt) return;
    const notBefore = timestampDate(r.notBefore).getTime();
    const expiresAt = timestampDate(r.expiresAt).getTime();
    if (r.target.case === 'userId') {
      // The latest cut-off, kept as long as the longest-lived of the user's revocations (one
      // may come again with a later expiry when tokens are found to live longer).
      const current = this.users.get(r.target.value);
      this.users.set(r.target.value, current ? { notBefore: Math.max(current.notBefore, notBefore), expiresAt: Math.max(current.expiresAt, expiresAt) } : { notBefore, expiresAt });
      // Logout-all, a role change, disabling or deletion: what is known of the user is stale.
      this.userChanged(r.target.value);
    } else if (r.target.case === 'sessionId') {
      this.sessions.set(r.target.value, Math.max(this.sessions.get(r.target.value) ?? 0, expiresAt));
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
