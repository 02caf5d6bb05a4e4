import { EventEmitter } from 'node:events';
import type { MikroORM } from '@mikro-orm/postgresql';
import { uuidPattern, type Logger } from '@gef/common';
import { unitOfWork } from '@gef/common/orm';
import { PgListener } from '@gef/common/pg-listener';
import { AnnouncedRevocations } from './announced-revocations';
import { secondsOf, type Seconds } from './token-lifetime';

export interface RevocationRecord {
  id: number;
  userId: string | null;
  sessionId: string | null;
  notBefore: Date;
  expiresAt: Date;
}

const channel = 'gef_revocation';
/** Announced by a trigger on `user_profile` (payload: the user id). */
const userChannel = 'gef_user_changed';

/** What watchers receive: a revocation, or a user whose profile changed. */
export type HubEvent = { revocation: RevocationRecord } | { changedUserId: string };

interface Row {
  id: string;
  user_id: string | null;
  session_id: string | null;
  not_before: Date;
  expires_at: Date;
}

const toRecord = (r: Row): RevocationRecord => ({
  id: Number(r.id),
  userId: r.user_id,
  sessionId: r.session_id,
  notBefore: new Date(r.not_before),
  expiresAt: new Date(r.expires_at),
});

/**
 * Token revocations: stored in PostgreSQL, announced with NOTIFY so every replica of the
 * user service streams them to its gateways at once. Profile changes travel the same way,
 * so gateways can cache profiles and drop them the moment they change.
 */
export class RevocationHub {
  private readonly events = new EventEmitter();
  private listener: PgListener | undefined;
  private stopped = false;

  constructor(
    private readonly orm: MikroORM,
    private readonly databaseUrl: string,
    /** How long an access token lives: a revocation matters that long. */
    tokenLifetimeSeconds: Seconds,
    private readonly logger: Logger,
  ) {
    this.events.setMaxListeners(0);
    this.tokenLifetimeSeconds = secondsOf(tokenLifetimeSeconds);
  }

  private readonly tokenLifetimeSeconds: () => number;

  /** Starts listening for revocations and profile changes made by any replica. */
  async start(): Promise<void> {
    this.listener = new PgListener({
      databaseUrl: this.databaseUrl,
      channels: [channel, userChannel],
      onNotification: (ch, payload) => {
        if (ch === channel && payload) void this.announce(Number(payload));
        else if (ch === userChannel && payload) this.events.emit('event', { changedUserId: payload });
      },
      // Anything announced while disconnected is lost: current watches end (see watch()).
      onListening: () => this.events.emit('resync'),
      logger: this.logger,
      name: 'revocations',
      retryMs: 1000,
    });
    await this.listener.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.events.emit('stop');
    await this.listener?.stop();
  }

  private async announce(id: number): Promise<void> {
    const rows = await this.orm.em
      .getConnection()
      .execute<Row[]>('select id, user_id, session_id, not_before, expires_at from revocation where id = ?', [id]);
    if (rows[0]) this.events.emit('event', { revocation: toRecord(rows[0]) });
  }

  /** Revocations still in force. */
  async active(): Promise<RevocationRecord[]> {
    const rows = await this.orm.em
      .getConnection()
      .execute<Row[]>('select id, user_id, session_id, not_before, expires_at from revocation where expires_at > now() order by id');
    return rows.map(toRecord);
  }

  private async insert(userId: string | null, sessionId: string | null, notBefore: Date): Promise<void> {
    const expiresAt = new Date(Date.now() + (this.tokenLifetimeSeconds() + 60) * 1000);
    await unitOfWork(this.orm, async (em) => {
      const conn = em.getConnection();
      const rows = await conn.execute<{ id: string }[]>(
        'insert into revocation (user_id, session_id, not_before, expires_at) values (?, ?, ?, ?) returning id',
        [userId, sessionId, notBefore, expiresAt],
      );
      await conn.execute(`select pg_notify('${channel}', ?)`, [String(rows[0]!.id)]);
    });
    // Old revocations are of no use once every token they cover has expired.
    await this.orm.em.getConnection().execute('delete from revocation where expires_at < now()');
  }

  /**
   * Refuses every token of the user issued before now. Tokens carry `iat` in whole
   * seconds, so the cut-off is the next whole second, and this resolves only once that
   * second has begun: a login made after this returns is never refused. With `wait: false`
   * it resolves once the revocation is stored (a change about to be made revokes again).
   */
  async revokeUser(userId: string, options: { wait?: boolean } = {}): Promise<void> {
    const notBefore = new Date(Math.ceil((Date.now() + 1) / 1000) * 1000);
    await this.insert(userId, null, notBefore);
    if (options.wait === false) return;
    const wait = notBefore.getTime() - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait + 5));
  }

  /**
   * Refuses every token of these users issued before `notBefore` (a change seen in
   * Keycloak: the next whole second after it). A user who already has a revocation as late
   * or later gets none: the same change seen twice revokes once. Does not wait for the
   * second to begin, unlike `revokeUser`. Resolves to the users revoked now.
   */
  async revokeUsersBefore(userIds: Iterable<string>, notBefore: Date): Promise<string[]> {
    const ids = [...new Set(userIds)].filter((id) => uuidPattern.test(id));
    if (ids.length === 0) return [];
    const expiresAt = new Date(Date.now() + (this.tokenLifetimeSeconds() + 60) * 1000);
    return unitOfWork(this.orm, async (em) => {
      const conn = em.getConnection();
      const revoked: string[] = [];
      for (const userId of ids) {
        const rows = await conn.execute<{ id: string }[]>(
          `insert into revocation (user_id, session_id, not_before, expires_at)
           select ?::uuid, null, ?, ?
           where not exists (select 1 from revocation where user_id = ?::uuid and not_before >= ?)
           returning id`,
          [userId, notBefore, expiresAt, userId, notBefore],
        );
        if (!rows[0]) continue;
        await conn.execute(`select pg_notify('${channel}', ?)`, [String(rows[0].id)]);
        revoked.push(userId);
      }
      return revoked;
    });
  }

  /**
   * Keeps every revocation in force at least `seconds` (and a minute) after it was made,
   * announced again to every watcher: tokens may live that long now.
   */
  async keepFor(seconds: number): Promise<number> {
    return unitOfWork(this.orm, async (em) => {
      const conn = em.getConnection();
      const rows = await conn.execute<{ id: string }[]>(
        `update revocation set expires_at = not_before + make_interval(secs => ?)
         where expires_at > now() and expires_at < not_before + make_interval(secs => ?)
         returning id`,
        [seconds + 60, seconds + 60],
      );
      for (const row of rows) await conn.execute(`select pg_notify('${channel}', ?)`, [String(row.id)]);
      return rows.length;
    });
  }

  /** Refuses every token of one session. */
  async revokeSession(sessionId: string): Promise<void> {
    await this.insert(null, sessionId, new Date());
  }

  /**
   * Every revocation in force, then `null` (the watcher is in sync), then each new
   * revocation and profile change until the signal aborts, with a `null` every
   * `keepAliveMs` so both ends notice a dead connection.
   *
   * When the listener comes back after losing the database, the watch ends: revocations
   * and profile changes announced meanwhile never reached it. Its watcher starts a new one
   * (every revocation in force again) and takes the end as "any user may have changed"
   * (a gateway drops every profile it holds, as for any lost stream).
   */
  async *watch(signal: AbortSignal, keepAliveMs = 15_000): AsyncGenerator<HubEvent | null> {
    const announced = new AnnouncedRevocations();
    const queue: HubEvent[] = [];
    let wake: (() => void) | undefined;
    const push = (e: HubEvent) => {
      queue.push(e);
      wake?.();
    };
    let missed = false;
    const resync = () => {
      missed = true;
      wake?.();
    };
    /**
     * Revocations are sent once each (one may be read and announced at once), and again when
     * their expiry moves (`keepFor`); profile changes always.
     */
    const fresh = (e: HubEvent): boolean => !('revocation' in e) || announced.take(e.revocation);
    const stop = () => wake?.();
    this.events.on('event', push);
    this.events.on('resync', resync);
    this.events.on('stop', stop);
    signal.addEventListener('abort', stop);
    let keepAlive = false;
    const timer = setInterval(() => {
      keepAlive = true;
      wake?.();
    }, keepAliveMs);
    try {
      for (const revocation of await this.active()) push({ revocation });
      while (queue.length > 0) {
        const next = queue.shift()!;
        if (fresh(next)) yield next;
      }
      yield null;
      while (!signal.aborted && !this.stopped && !missed) {
        const next = queue.shift();
        if (next) {
          if (fresh(next)) yield next;
          continue;
        }
        if (keepAlive) {
          keepAlive = false;
          announced.forgetExpired();
          yield null;
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      clearInterval(timer);
      this.events.off('event', push);
      this.events.off('resync', resync);
      this.events.off('stop', stop);
      signal.removeEventListener('abort', stop);
    }
  }
}

