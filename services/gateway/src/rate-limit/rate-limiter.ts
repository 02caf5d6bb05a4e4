import pg from 'pg';
import type { Logger } from '@gef/common';

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

/** Counts events against limits. */
export interface Limiter {
  /** Counts one event for each check (their keys distinct); a decision for each, in order. */
  hit(checks: readonly LimitCheck[]): Promise<LimitDecision[]>;
  close(): Promise<void>;
}

/**
 * Fixed-window counters in the gateway's own PostgreSQL schema, so limits hold across
 * every gateway replica. One statement for all of a request's checks. When the database
 * cannot answer, the checks let the request through (and say so in the log) rather than
 * refuse everyone.
 */
export class RateLimiter implements Limiter {
  private ready: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly logger: Logger,
  ) {}

  static fromUrl(url: string, logger: Logger): RateLimiter {
    const pool = new pg.Pool({ connectionString: url, max: 5, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 2_000 });
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
      return { key, limit, windowMs, start: new Date(Math.floor(now / windowMs) * windowMs) };
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

  /** Removes counters of windows long past. */
  async sweep(olderThanSeconds = 86_400): Promise<void> {
    await this.pool.query(`delete from rate_limit where window_start < now() - make_interval(secs => $1)`, [olderThanSeconds]).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
