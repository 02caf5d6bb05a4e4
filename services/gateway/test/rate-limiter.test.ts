/**
 * The rate limiter against a real PostgreSQL: a request's checks counted in one statement,
 * none lost under concurrency, requests let through when the database is away, and the
 * counters of past windows swept on a timer, by one process at a time.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { Client } from 'pg';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { RateLimiter, sweepLockId, type LimitCheck } from '../src/rate-limit/rate-limiter';

let pg: TestPostgres;
let limiter: RateLimiter;
const timeouts = { statementSeconds: 60, idleInTransactionSeconds: 60 };

beforeAll(async () => {
  pg = await startTestPostgres('gef_gateway_test');
  limiter = RateLimiter.fromUrl(pg.url, pino({ level: 'silent' }), timeouts);
}, 120_000);

afterAll(async () => {
  await limiter?.close();
  await pg?.stop();
}, 60_000);

const minute = { max: 3, windowSeconds: 60 };

describe('RateLimiter', () => {
  it("counts each of a request's checks and answers for each, in the order asked", async () => {
    const checks: LimitCheck[] = [
      { key: 'run_client:10.0.0.1', limit: { max: 100, windowSeconds: 60 } },
      { key: 'run_account:a', limit: minute },
    ];
    for (let i = 0; i < 3; i++) expect(await limiter.hit(checks)).toEqual([{ allowed: true }, { allowed: true }]);
    const [client, account] = await limiter.hit(checks);
    expect(client).toEqual({ allowed: true });
    expect(account).toMatchObject({ allowed: false, retryAfterSeconds: expect.any(Number) });
    expect((account as { retryAfterSeconds: number }).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect((account as { retryAfterSeconds: number }).retryAfterSeconds).toBeLessThanOrEqual(60);
    // Another account from the same client is counted apart.
    expect(await limiter.hit([checks[0]!, { key: 'run_account:b', limit: minute }])).toEqual([{ allowed: true }, { allowed: true }]);
    expect(await limiter.hit([])).toEqual([]);
  });

  it('counts keys of any length: one a request chose too long for an index let all its checks through', async () => {
    // Random text, which the index cannot compress below its row size.
    const noise = randomBytes(6000).toString('base64');
    const long = (c: string) => `login_account:${c}${noise}@example.org`;
    const checks: LimitCheck[] = [
      { key: 'login_client:10.9.9.9', limit: minute },
      { key: long('a'), limit: minute },
    ];
    for (let i = 0; i < 3; i++) expect(await limiter.hit(checks)).toEqual([{ allowed: true }, { allowed: true }]);
    expect((await limiter.hit(checks)).map((d) => d.allowed)).toEqual([false, false]);
    // Two long keys alike in their first hundred characters are counted apart.
    expect(await limiter.hit([{ key: `${long('a')}x`, limit: minute }])).toEqual([{ allowed: true }]);
  });

  it('counts keys holding text no column can (NUL, an unpaired surrogate): such a key let all its checks through', async () => {
    for (const odd of ['\u0000', '\ud800']) {
      const checks: LimitCheck[] = [
        { key: `refresh_client:10.8.8.${odd.charCodeAt(0) % 200}`, limit: minute },
        { key: `refresh_session:${odd}/x`, limit: minute },
      ];
      for (let i = 0; i < 3; i++) expect(await limiter.hit(checks)).toEqual([{ allowed: true }, { allowed: true }]);
      expect((await limiter.hit(checks)).map((d) => d.allowed)).toEqual([false, false]);
    }
  });

  it('loses no count and deadlocks on no key when requests sharing keys come at once, in any order', async () => {
    const shared = { key: 'login_client:10.0.0.2', limit: { max: 1000, windowSeconds: 60 } };
    const other = { key: 'login_account:someone@example.org', limit: { max: 1000, windowSeconds: 60 } };
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => limiter.hit(i % 2 === 0 ? [shared, other] : [other, shared])));
    expect(answers.flat().every((d) => d.allowed)).toBe(true);
    const tight = { max: 60, windowSeconds: 60 };
    // Both counters stand at 60: the next hit of each is over a limit of 60.
    expect(await limiter.hit([{ ...shared, limit: tight }, { ...other, limit: tight }])).toEqual([
      { allowed: false, retryAfterSeconds: expect.any(Number) },
      { allowed: false, retryAfterSeconds: expect.any(Number) },
    ]);
  });

  it('counts from the first request when several gateway processes make its table at once', async () => {
    const admin = new Client({ connectionString: pg.url });
    await admin.connect();
    await admin.query('drop table if exists rate_limit');
    await admin.end();
    // Each its own pool, as each gateway process has; none of them finds the table.
    const processes = Array.from({ length: 8 }, () => RateLimiter.fromUrl(pg.url, pino({ level: 'silent' }), timeouts));
    try {
      const answers = await Promise.all(processes.map((p, i) => p.hit([{ key: `fresh:${i}`, limit: { max: 0, windowSeconds: 60 } }])));
      expect(answers.map(([a]) => a!.allowed)).toEqual(Array(8).fill(false));
    } finally {
      await Promise.all(processes.map((p) => p.close()));
    }
  });

  it('lets a request through once its counting statement waits past the statement timeout', async () => {
    const key = `stuck-${randomBytes(4).toString('hex')}`;
    await limiter.hit([{ key, limit: minute }]);
    const quick = RateLimiter.fromUrl(pg.url, pino({ level: 'silent' }), { statementSeconds: 1, idleInTransactionSeconds: 60 });
    const holder = new Client({ connectionString: pg.url });
    await holder.connect();
    try {
      // Another session holds the key's row: the count waits on it until the database ends it.
      await holder.query('begin');
      await holder.query('select * from rate_limit where key = $1 for update', [key]);
      // Without the limit the check would wait for the lock as long as it is held.
      expect(await quick.hit([{ key, limit: { max: 0, windowSeconds: 60 } }])).toEqual([{ allowed: true }]);
    } finally {
      await holder.query('rollback');
      await holder.end();
      await quick.close();
    }
  }, 30_000);

  it('lets requests through when the database cannot answer', async () => {
    const away = RateLimiter.fromUrl('postgres://nobody:nothing@127.0.0.1:1/none', pino({ level: 'silent' }), timeouts);
    try {
      expect(await away.hit([{ key: 'k', limit: { max: 0, windowSeconds: 60 } }])).toEqual([{ allowed: true }]);
    } finally {
      await away.close();
    }
  });
});

describe('RateLimiter sweeps', () => {
  const hour = { max: 100, windowSeconds: 3600 };
  /** What the gateway would sweep with an hour as its longest window (`counterLifetimeSeconds`). */
  const lifetime = 3660;
  let db: Client;

  beforeAll(async () => {
    db = new Client({ connectionString: pg.url });
    await db.connect();
    // The table exists once anything was counted.
    await limiter.hit([{ key: 'sweep:setup', limit: hour }]);
  });

  afterAll(async () => {
    await db?.end();
  });

  /** A counter whose window began `secondsAgo` ago. */
  const plant = (key: string, secondsAgo: number) =>
    db.query(`insert into rate_limit (key, window_start, count) values ($1, now() - make_interval(secs => $2), 7)
              on conflict (key) do update set window_start = excluded.window_start, count = excluded.count`, [key, secondsAgo]);
  const counts = async (...keys: string[]): Promise<Record<string, number>> => {
    const { rows } = await db.query<{ key: string; count: number }>('select key, count from rate_limit where key = any($1)', [keys]);
    return Object.fromEntries(rows.map((r) => [r.key, r.count]));
  };
  const until = async (done: () => Promise<boolean>, what: string) => {
    for (let i = 0; i < 400; i++) {
      if (await done()) return;
      await sleep(25);
    }
    throw new Error(`never: ${what}`);
  };

  it('deletes, on its own timer, the counters of windows past, and keeps those that can still count', async () => {
    const sweeper = RateLimiter.fromUrl(pg.url, pino({ level: 'silent' }), timeouts);
    try {
      await limiter.hit([{ key: 'sweep:current', limit: hour }]);
      await plant('sweep:days-old', 3 * 86_400);
      await plant('sweep:hours-old', 2 * 3600);
      // Began 50 minutes ago: its hour has ten minutes to go.
      await plant('sweep:in-its-window', 50 * 60);
      sweeper.startSweeping({ everyMs: 20, olderThanSeconds: lifetime });
      await until(async () => Object.keys(await counts('sweep:days-old', 'sweep:hours-old')).length === 0, 'past windows swept');
      expect(await counts('sweep:current', 'sweep:in-its-window')).toEqual({ 'sweep:current': 1, 'sweep:in-its-window': 7 });
      // Counting goes on as before.
      expect(await limiter.hit([{ key: 'sweep:current', limit: { max: 1, windowSeconds: 3600 } }])).toEqual([{ allowed: false, retryAfterSeconds: expect.any(Number) }]);
      // Stopped (a sweep under way ended), it sweeps no more.
      await sweeper.stopSweeping();
      await plant('sweep:after-stop', 2 * 3600);
      await sleep(200);
      expect(await counts('sweep:after-stop')).toEqual({ 'sweep:after-stop': 7 });
    } finally {
      await sweeper.close();
    }
    await db.query(`delete from rate_limit where key = 'sweep:after-stop'`);
  });

  it('leaves the sweep to the process holding the lock, and sweeps once it is free', async () => {
    const sweeper = RateLimiter.fromUrl(pg.url, pino({ level: 'silent' }), timeouts);
    const other = new Client({ connectionString: pg.url });
    await other.connect();
    try {
      await plant('sweep:locked-out', 2 * 3600);
      await other.query('select pg_advisory_lock($1)', [sweepLockId]);
      expect(await sweeper.sweep(lifetime)).toBe(0);
      expect(await counts('sweep:locked-out')).toEqual({ 'sweep:locked-out': 7 });
      await other.query('select pg_advisory_unlock($1)', [sweepLockId]);
      expect(await sweeper.sweep(lifetime)).toBe(1);
      expect(await counts('sweep:locked-out')).toEqual({});
      // The sweeper gave the lock back.
      expect((await other.query<{ locked: boolean }>('select pg_try_advisory_lock($1) as locked', [sweepLockId])).rows[0]?.locked).toBe(true);
    } finally {
      await other.end();
      await sweeper.close();
    }
  });
});
