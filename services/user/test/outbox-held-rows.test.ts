/**
 * Two dispatchers of one outbox (two replicas of a service; real PostgreSQL, a fake start):
 * while one holds a due row locked, its start slow, the other neither takes the row nor asks
 * for it in a tight loop; it takes rows that are free at once.
 */
import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { createLogger } from '@gef/common';
import { OutboxDispatcher, type OutboxStore } from '@gef/common/outbox';
import { UserDeletionDispatchRepository } from '../src/repositories/user-deletion-dispatch-repository';
import { openTestDatabase } from './support/test-database';

jest.setTimeout(120_000);

const logger = createLogger('user-test', 'silent');

let db: { orm: MikroORM; close: () => Promise<void> };

beforeAll(async () => {
  db = await openTestDatabase();
});
afterAll(async () => {
  await db?.close();
});

/** The outbox's store, counting the claims made through it. */
function counted<T>(store: OutboxStore<T>): { store: OutboxStore<T>; claims: () => number } {
  let claims = 0;
  return {
    store: {
      claim: (em, limit) => {
        claims++;
        return store.claim(em, limit);
      },
      done: (em, key) => store.done(em, key),
      failed: (em, key, error) => store.failed(em, key, error),
      nextDue: (em) => store.nextDue(em),
    },
    claims: () => claims,
  };
}

it("a row another dispatcher holds is neither taken nor asked for in a tight loop; a free one is taken", async () => {
  const held = randomUUID();
  await db.orm.em.fork().execute('insert into user_deletion_dispatch (user_id) values (?)', [held]);
  let release!: () => void;
  const releasing = new Promise<void>((r) => (release = r));
  const started: string[] = [];
  const first = new OutboxDispatcher<{ userId: string }>({
    name: 'first',
    orm: db.orm,
    store: new UserDeletionDispatchRepository(),
    start: async (item) => {
      started.push(`first ${item.userId}`);
      await releasing;
    },
    logger,
  });
  const second = counted(new UserDeletionDispatchRepository());
  const other = new OutboxDispatcher<{ userId: string }>({
    name: 'second',
    orm: db.orm,
    store: second.store,
    start: async (item) => void started.push(`second ${item.userId}`),
    logger,
    minBackoffMs: 100,
  });
  first.start();
  try {
    // The first dispatcher holds the row, its start waiting.
    for (let i = 0; i < 100 && started.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(started).toEqual([`first ${held}`]);
    other.start();
    await new Promise((r) => setTimeout(r, 1000));
    // A pass every 100 ms at most, and a few more for the wake-ups: a tight loop made thousands.
    expect(second.claims()).toBeLessThanOrEqual(20);
    expect(started).toEqual([`first ${held}`]);
    // A row nobody holds is taken at once.
    const free = randomUUID();
    await db.orm.em.fork().execute('insert into user_deletion_dispatch (user_id) values (?)', [free]);
    other.wake();
    for (let i = 0; i < 100 && !started.includes(`second ${free}`); i++) await new Promise((r) => setTimeout(r, 20));
    expect(started).toContain(`second ${free}`);
  } finally {
    release();
    await first.stop();
    await other.stop();
  }
  const left = await db.orm.em.fork().execute<{ user_id: string }[]>('select user_id from user_deletion_dispatch where user_id in (?, ?)', [held, randomUUID()]);
  expect(left).toEqual([]);
});
