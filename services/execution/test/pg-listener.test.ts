import pg from 'pg';
import { createLogger } from '@gef/common';
import { PgListener } from '@gef/common/pg-listener';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { silentProxy, type SilentProxy } from './support/silent-proxy';

// PgListener (services/common) over a real PostgreSQL, here because starting one needs
// @gef/deploy, which depends on @gef/common.
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, ms = 5000): Promise<boolean> {
  for (const end = Date.now() + ms; !check() && Date.now() < end; ) await sleep(20);
  return check();
}

describe('PgListener', () => {
  let db: TestPostgres;
  let notifier: pg.Client;
  const open: { proxy?: SilentProxy; listener?: PgListener }[] = [];

  beforeAll(async () => {
    db = await startTestPostgres('gef_pg_listener');
    notifier = new pg.Client({ connectionString: db.url });
    await notifier.connect();
  }, 120_000);

  afterEach(async () => {
    for (const o of open.splice(0)) {
      await o.listener?.stop();
      await o.proxy?.close();
    }
  });

  afterAll(async () => {
    await notifier?.end();
    await db?.stop();
  }, 60_000);

  /** A listener on `gef_test` through a proxy, recording what it is told. */
  async function listen(options: { probeIntervalMs?: number; probeTimeoutMs?: number } = {}) {
    const proxy = await silentProxy(db.url);
    const seen = { payloads: [] as string[], lost: 0, listening: 0, listeningWhenLost: [] as boolean[] };
    const listener: PgListener = new PgListener({
      databaseUrl: proxy.url,
      channels: ['gef_test'],
      onNotification: (_channel, payload) => seen.payloads.push(payload),
      onListening: () => seen.listening++,
      onLost: () => {
        seen.lost++;
        seen.listeningWhenLost.push(listener.listening);
      },
      logger: createLogger('pg-listener-test', 'silent'),
      name: 'test',
      retryMs: 100,
      ...options,
    });
    open.push({ proxy, listener });
    await listener.start();
    return { proxy, listener, seen };
  }

  const notify = (payload: string) => notifier.query(`select pg_notify('gef_test', $1)`, [payload]);

  it('holds its connection with TCP keep-alive', async () => {
    const { listener } = await listen();
    const connection = (listener as unknown as { client: { connection: { _keepAlive?: boolean; _keepAliveInitialDelayMillis?: number } } }).client.connection;
    expect(connection._keepAlive).toBe(true);
    expect(connection._keepAliveInitialDelayMillis).toBeGreaterThan(0);
    expect(connection._keepAliveInitialDelayMillis).toBeLessThanOrEqual(30_000);
  });

  it('notices a connection that died silently, reports it lost, and listens again on a new one', async () => {
    const { proxy, listener, seen } = await listen({ probeIntervalMs: 200, probeTimeoutMs: 300 });
    expect(listener.listening).toBe(true);
    await notify('one');
    expect(await until(() => seen.payloads.includes('one'))).toBe(true);

    proxy.cut();
    await notify('lost on the way');
    // The probe fails (no answer): the listener says so, no longer claims to listen, reconnects.
    expect(await until(() => seen.lost === 1, 3000)).toBe(true);
    expect(seen.listeningWhenLost).toEqual([false]);
    expect(await until(() => seen.listening === 2 && listener.listening, 3000)).toBe(true);
    await notify('two');
    expect(await until(() => seen.payloads.includes('two'))).toBe(true);
    expect(seen.payloads).toEqual(['one', 'two']);
  });

  it('keeps a connection that answers its probes', async () => {
    const { listener, seen } = await listen({ probeIntervalMs: 50, probeTimeoutMs: 1000 });
    await sleep(600);
    await notify('still here');
    expect(await until(() => seen.payloads.includes('still here'))).toBe(true);
    expect({ lost: seen.lost, listening: seen.listening, now: listener.listening }).toEqual({ lost: 0, listening: 1, now: true });
  });

  it('stops probing once stopped', async () => {
    const { listener, seen } = await listen({ probeIntervalMs: 50 });
    await listener.stop();
    await sleep(300);
    expect({ lost: seen.lost, listening: seen.listening, now: listener.listening }).toEqual({ lost: 1, listening: 1, now: false });
  });
});
