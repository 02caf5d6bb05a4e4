/**
 * openDatabase against a real PostgreSQL: the service's pool holds statements and idle
 * transactions to their time limits (a stuck one fails as Unavailable, 503), while its
 * migrations run without them.
 */
import { Code } from '@connectrpc/connect';
import { Migration } from '@mikro-orm/migrations';
import type { MikroORM } from '@mikro-orm/postgresql';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { createLogger, toConnectError } from '../src';
import { openDatabase } from '../src/orm';

let pg: TestPostgres;
let orm: MikroORM | undefined;

/** A migration slower than the pool's statement limit. */
class SlowMigration extends Migration {
  override async up(): Promise<void> {
    this.addSql('select pg_sleep(1.5);');
    this.addSql('create table slow_marker (id integer primary key);');
  }
}

beforeAll(async () => {
  pg = await startTestPostgres('gef_common_orm');
}, 120_000);

afterAll(async () => {
  await orm?.close();
  await pg?.stop();
}, 60_000);

describe('openDatabase', () => {
  beforeAll(async () => {
    orm = await openDatabase({
      url: pg.url,
      entities: [],
      migrations: [{ name: 'Migration20990101000001', class: SlowMigration }],
      logger: createLogger('orm-test', 'silent'),
      timeouts: { statementSeconds: 1, idleInTransactionSeconds: 1 },
    });
  }, 60_000);

  it('applies a migration that runs longer than the statement limit', async () => {
    expect(await orm!.em.fork().execute('select count(*)::int as n from slow_marker')).toEqual([{ n: 0 }]);
  });

  it('ends a statement past its limit, as Unavailable', async () => {
    const err = await orm!.em
      .fork()
      .execute('select pg_sleep(5)')
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toMatchObject({ code: '57014' });
    expect(toConnectError(err).code).toBe(Code.Unavailable);
  }, 30_000);

  it('ends a transaction left open idle past its limit, and the pool goes on serving', async () => {
    const err = await orm!.em
      .fork()
      .transactional(async (em) => {
        await em.execute('select 1');
        await new Promise((r) => setTimeout(r, 2500));
        await em.execute('select 2');
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeDefined();
    expect(toConnectError(err).code).toBe(Code.Unavailable);
    expect(await orm!.em.fork().execute('select 3 as n')).toEqual([{ n: 3 }]);
  }, 30_000);
});

describe('dates sent to the database', () => {
  it('name the same instant whatever the host’s time zone, old local offsets with seconds included', async () => {
    const zone = process.env['TZ'];
    // New York's local mean time until 1883 was 4:56:02 behind UTC.
    process.env['TZ'] = 'America/New_York';
    try {
      const instants = [new Date('1850-01-01T00:00:00Z'), new Date(new Date(0).setUTCFullYear(1, 0, 1)), new Date('2026-11-28T05:13:18.123Z')];
      for (const at of instants) {
        const [row] = await orm!.em.fork().execute<{ ms: string }[]>('select (extract(epoch from ?::timestamptz) * 1000)::bigint::text as ms', [at]);
        expect(Number(row!.ms)).toBe(at.getTime());
      }
    } finally {
      if (zone === undefined) delete process.env['TZ'];
      else process.env['TZ'] = zone;
    }
  });
});
