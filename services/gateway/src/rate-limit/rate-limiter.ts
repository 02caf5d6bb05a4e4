import pg from 'pg';
import type { Logger } from '@gef/common';

/** A limit: at most `max` events per `windowSeconds` for one key. */
export interface Limit {
  max: number;
  windowSeconds: number;
}

export type LimitDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/** Counts events against limits. */
export interface Limiter {
  hit(key: string, limit: Limit): Promise<LimitDecision>;
  close(): Promise<void>;
}

/**
 * Fixed-window counters in the gateway's own PostgreSQL schema, so limits hold across
 * every gateway replica. One statement per check. When the database cannot answer, the
 * check lets the request through (and says so in the log) rather than refuse everyone.
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

  /** Counts one event for `key` and says whether it is within the limit. */
  async hit(key: string, limit: Limit): Promise<LimitDecision> {
    const windowMs = limit.windowSeconds * 1000;
    const now = Date.now();
    const windowStart = new Date(Math.floor(now / windowMs) * windowMs);
    try {
      await this.ensureSchema();
      const res = await this.pool.query<{ count: number }>(
        `insert into rate_limit (key, window_start, count) values ($1, $2, 1)
         on conflict (key) do update set
           count = case when rate_limit.window_start = excluded.window_start then rate_limit.count + 1 else 1 end,
           window_start = excluded.window_start
         returning count`,
        [key, windowStart],
      );
      const count = res.rows[0]?.count ?? 1;
      if (count <= limit.max) return { allowed: true };
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((windowStart.getTime() + windowMs - now) / 1000)) };
    } catch (err) {
      this.logger.warn({ reason: err instanceof Error ? err.message : String(err) }, 'rate limit not checked: database unavailable');
      return { allowed: true };
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
