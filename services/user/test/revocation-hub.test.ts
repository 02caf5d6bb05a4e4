/**
 * The revocation hub over a real PostgreSQL: what its watchers receive, and what they are
 * told when its listener loses the database and comes back.
 */
import { randomUUID } from 'node:crypto';
import { createLogger } from '@gef/common';
import { RevocationHub, type HubEvent } from '../src/revocations/revocation-hub';
import { openTestDatabase } from './support/test-database';
import { listenerApplicationName } from '@gef/common/pg-listener';

jest.setTimeout(120_000);

const logger = createLogger('user-test', 'silent');
let database: Awaited<ReturnType<typeof openTestDatabase>>;
let hub: RevocationHub;

beforeAll(async () => {
  database = await openTestDatabase();
  hub = new RevocationHub(database.orm, database.url, 3600, logger);
  await hub.start();
});

afterAll(async () => {
  await hub?.stop();
  await database?.close();
});

type Next = IteratorResult<HubEvent | null>;

/** The watch's next message, or 'silent' when none comes within `ms`. */
async function next(watch: AsyncGenerator<HubEvent | null>, ms = 5000): Promise<Next | 'silent'> {
  let timer: NodeJS.Timeout | undefined;
  const silent = new Promise<'silent'>((resolve) => (timer = setTimeout(() => resolve('silent'), ms)));
  try {
    return await Promise.race([watch.next(), silent]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads past the revocations in force to the in-sync `null`. */
async function inSync(watch: AsyncGenerator<HubEvent | null>): Promise<void> {
  for (;;) {
    const message = await next(watch);
    if (message === 'silent' || message.done) throw new Error('the watch never got in sync');
    if (message.value === null) return;
  }
}

describe('RevocationHub', () => {
  it('streams new revocations to a watcher in sync', async () => {
    const abort = new AbortController();
    const watch = hub.watch(abort.signal, 60_000);
    await inSync(watch);
    const userId = randomUUID();
    await hub.revokeUser(userId);
    const message = await next(watch);
    expect(message).toMatchObject({ done: false, value: { revocation: { userId } } });
    abort.abort();
    await watch.return(undefined);
  });

  it('sends a revocation again when keepFor moves its expiry, so watchers keep it that long', async () => {
    const abort = new AbortController();
    const watch = hub.watch(abort.signal, 60_000);
    await inSync(watch);
    const userId = randomUUID();
    await hub.revokeUser(userId);
    const first = await next(watch);
    if (first === 'silent' || first.done || !first.value || !('revocation' in first.value)) throw new Error('no revocation');
    const { id, notBefore } = first.value.revocation;
    expect(await hub.keepFor(4 * 3600)).toBeGreaterThanOrEqual(1);
    let again: Next | 'silent';
    do again = await next(watch);
    while (again !== 'silent' && !again.done && again.value !== null && 'revocation' in again.value && again.value.revocation.id !== id);
    expect(again).toMatchObject({ done: false, value: { revocation: { id, userId } } });
    const moved = (again as IteratorYieldResult<{ revocation: { expiresAt: Date } }>).value.revocation.expiresAt;
    expect(moved.getTime()).toBe(notBefore.getTime() + (4 * 3600 + 60) * 1000);
    abort.abort();
    await watch.return(undefined);
  });

  it('ends its watches when the listener comes back after losing the database: profile changes announced meanwhile were lost', async () => {
    const abort = new AbortController();
    const watch = hub.watch(abort.signal, 60_000);
    await inSync(watch);
    // The listener's connection dies (a database restart, a network cut).
    await database.orm.em
      .getConnection()
      .execute('select pg_terminate_backend(pid) from pg_stat_activity where application_name = ?', [listenerApplicationName]);
    // It reconnects within a second or so; the watch then ends, so its watcher starts over
    // and drops whatever it holds of every user.
    const end = await next(watch, 10_000);
    expect(end).toEqual({ done: true, value: undefined });

    // A new watch is in sync and gets what happens from then on.
    const again = hub.watch(abort.signal, 60_000);
    await inSync(again);
    const userId = randomUUID();
    await hub.revokeUser(userId);
    expect(await next(again)).toMatchObject({ done: false, value: { revocation: { userId } } });
    abort.abort();
    await again.return(undefined);
  });
});
