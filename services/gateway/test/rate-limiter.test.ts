/**
 * The rate limiter against a real PostgreSQL: a request's checks counted in one statement,
 * none lost under concurrency, and requests let through when the database is away.
 */
import pino from 'pino';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { RateLimiter, type LimitCheck } from '../src/rate-limit/rate-limiter';

let pg: TestPostgres;
let limiter: RateLimiter;

beforeAll(async () => {
  pg = await startTestPostgres('gef_gateway_test');
  limiter = RateLimiter.fromUrl(pg.url, pino({ level: 'silent' }));
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

  it('lets requests through when the database cannot answer', async () => {
    const away = RateLimiter.fromUrl('postgres://nobody:nothing@127.0.0.1:1/none', pino({ level: 'silent' }));
    try {
      expect(await away.hit([{ key: 'k', limit: { max: 0, windowSeconds: 60 } }])).toEqual([{ allowed: true }]);
    } finally {
      await away.close();
    }
  });
});
