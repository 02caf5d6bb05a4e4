import { createHash } from 'node:crypto';
import pg from 'pg';
import { connectionLimits, cutText, unstorableText, wellFormed, type DatabaseTimeouts, type Logger } from '@gef/common';

/** A limit: at most `max` events per `windowSeconds` for one key. */
export interface Limit {
  max: number;
  windowSeconds: number;
}

export type LimitDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/** One event counted for `key` against `limit`. */
export interface LimitCheck {
  key: string;
  limit: Limit;
}

/**
 * The session-level advisory lock a sweep holds, so that of all the gateway processes on
 * one database (workers and replicas alike) one sweeps at a time.
 */
export const sweepLockId = 0x67_65_66_72; // 'gefr'

/** Rows deleted per statement of a sweep: a backlog goes in short steps, not one long lock. */
const sweepBatch = 50_000;

/** Counts events against limits. */
export interface Limiter {
  /** Counts one event for each check (their keys distinct); a decision for each, in order. */
  hit(checks: readonly LimitCheck[]): Promise<LimitDecision[]>;
  close(): Promise<void>;
}

/** Keys longer than this are stored by their start and a digest of the whole. */
export const maxStoredKeyLength = 200;

/**
 * A counter's key as stored: a request chooses part of it (an e-mail in a login body, an
 * address in X-Forwarded-For behind a trusting proxy, the session named in an unsigned
 * refresh token), and a key past PostgreSQL's index row size, or holding text no column can
 * (NUL, an unpaired surrogate), failed the whole statement, which let every check of the
 * request through. Such a key is stored as its digest, after a readable part of it.
 */
export function storedKey(key: string): string {
  if (key.length <= maxStoredKeyLength && !unstorableText.test(key)) return key;
  const readable = wellFormed(cutText(key, 100)).replaceAll('\u0000', '\ufffd');
  return `${readable}#${createHash('sha256').update(key).digest('base64url')}`;
}

/** The longest a rate-limit statement may run before its check lets the request through. */
export const checkStatementSeconds = 5;

/**
 * Fixed-window counters in the gateway's own PostgreSQL schema, so limits hold across
 * every gateway replica. One statement for all of a request's checks. When the database
 * cannot answer, the checks let the request through (and say so in the log) rather than
 * refuse everyone. A row is kept per key, so past windows' rows are swept
 * (`startSweeping`): keys anyone can invent (e-mail addresses) would otherwise pile up.
 */
export class RateLimiter implements Limiter {
  private ready: Promise<void> | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping: Promise<number> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly logger: Logger,
  ) {}

  static fromUrl(url: string, logger: Logger, timeouts: DatabaseTimeouts): RateLimiter {
    // A check waiting longer than a few seconds (on a row lock) lets its request through
    // rather than hold it: the process's statement limit, at most `checkStatementSeconds`
    // (none when the process sends none).
    const statementSeconds = timeouts.statementSeconds > 0 ? Math.min(timeouts.statementSeconds, checkStatementSeconds) : 0;
    const limits = connectionLimits({ ...timeouts, statementSeconds });
    const pool = new pg.Pool({ connectionString: url, max: 5, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 2_000, ...limits });
    pool.on('error', (err) => logger.warn({ reason: err.message }, 'rate-limit database connection lost'));
    return new RateLimiter(pool, logger);
  }

  private ensureSchema(): Promise<void> {
    this.ready ??= this.pool
      .query(
        `create table if not exists rate_limit (
           key text primary key,
           window_start timestamptz not null,
           count integer not null
         )`,
      )
      .then(() => undefined)
      .catch((err: unknown) => {
        // Another gateway process made it at the same moment ('if not exists' does not
        // cover two creations at once: one fails on the catalog's unique type name, or finds
        // the table's row type made).
        if (['23505', '42P07', '42710'].includes((err as { code?: string }).code ?? '')) return;
        this.ready = undefined;
        throw err;
      });
    return this.ready;
  }

  /**
   * Counts one event for each check's key and says, for each, whether it is within its
   * limit. The rows are written in key order, so concurrent requests sharing keys lock them
   * in the same order.
   */
  async hit(checks: readonly LimitCheck[]): Promise<LimitDecision[]> {
    if (checks.length === 0) return [];
    const now = Date.now();
    const windows = checks.map(({ key, limit }) => {
      const windowMs = limit.windowSeconds * 1000;
      return { key: storedKey(key), limit, windowMs, start: new Date(Math.floor(now / windowMs) * windowMs) };
    });
    const ordered = [...windows].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    try {
      await this.ensureSchema();
      const res = await this.pool.query<{ key: string; count: number }>(
        `insert into rate_limit (key, window_start, count)
         select key, window_start, 1 from unnest($1::text[], $2::timestamptz[]) with ordinality as c(key, window_start, n) order by n
         on conflict (key) do update set
           count = case when rate_limit.window_start = excluded.window_start then rate_limit.count + 1 else 1 end,
           window_start = excluded.window_start
         returning key, count`,
        [ordered.map((w) => w.key), ordered.map((w) => w.start)],
      );
      const counts = new Map(res.rows.map((r) => [r.key, r.count]));
      return windows.map(({ key, limit, windowMs, start }) => {
        if ((counts.get(key) ?? 1) <= limit.max) return { allowed: true };
        return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((start.getTime() + windowMs - now) / 1000)) };
      });
    } catch (err) {
      this.logger.warn({ reason: err instanceof Error ? err.message : String(err) }, 'rate limit not checked: database unavailable');
      return checks.map(() => ({ allowed: true }));
    }
  }

  /**
   * Deletes the counters of windows that began more than `olderThanSeconds` ago. A counter
   * counts until its window ends, so with the longest window of any limit (`counterLifetimeSeconds`)
   * only counters that can no longer count go. Does nothing while another process sweeps
   * (an advisory lock), skips rows a request is renewing, and deletes in batches. Resolves
   * with the number of rows deleted; 0 (logged) when the database cannot answer.
   */
  async sweep(olderThanSeconds: number): Promise<number> {
    const before = new Date(Date.now() - olderThanSeconds * 1000);
    let client: pg.PoolClient | undefined;
    let broken: Error | undefined;
    try {
      await this.ensureSchema();
      client = await this.pool.connect();
      const lock = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1) as locked', [sweepLockId]);
      if (!lock.rows[0]?.locked) return 0;
      try {
        let deleted = 0;
        for (;;) {
          const res = await client.query(
            `delete from rate_limit where key in (
               select key from rate_limit where window_start < $1 limit $2 for update skip locked
             )`,
            [before, sweepBatch],
          );
          deleted += res.rowCount ?? 0;
          if ((res.rowCount ?? 0) < sweepBatch) break;
        }
        if (deleted > 0) this.logger.debug({ deleted }, 'rate-limit counters of past windows deleted');
        return deleted;
      } finally {
        await client.query('select pg_advisory_unlock($1)', [sweepLockId]);
      }
    } catch (err) {
      // A connection that failed may still hold the lock: it is closed, not reused.
      broken = err instanceof Error ? err : new Error(String(err));
      this.logger.warn({ reason: broken.message }, 'rate-limit counters not swept: database unavailable');
      return 0;
    } finally {
      client?.release(broken);
    }
  }

  /**
   * Sweeps every `everyMs` (`sweep(olderThanSeconds)`) until `stopSweeping()` or `close()`;
   * a sweep still running when the next is due is not doubled. The timer keeps no process alive.
   */
  startSweeping({ everyMs, olderThanSeconds }: { everyMs: number; olderThanSeconds: number }): this {
    clearInterval(this.sweeper);
    this.sweeper = setInterval(() => {
      this.sweeping ??= this.sweep(olderThanSeconds).finally(() => {
        this.sweeping = undefined;
      });
    }, everyMs);
    this.sweeper.unref();
    return this;
  }

  /** Stops sweeping; resolves once a sweep under way has ended. */
  async stopSweeping(): Promise<void> {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    await this.sweeping;
  }

  /** Stops sweeping, waits for a sweep under way, and closes the connections. */
  async close(): Promise<void> {
    await this.stopSweeping();
    await this.pool.end();
  }
}
