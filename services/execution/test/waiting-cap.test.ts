import { randomUUID } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { caller, serviceFixture, type ServiceFixture } from './support/service-fixture';

// A USER's runs beyond their slots wait in a bounded queue (each waiting run holds a
// workflow): past `maxWaiting` a run is refused 429, and nothing of it is stored.
describe('the waiting queue of a user', () => {
  let pg: TestPostgres;
  let f: ServiceFixture;

  beforeAll(async () => {
    pg = await startTestPostgres('gef_execution_waiting_cap_test');
    f = await serviceFixture(pg.url);
    f.deps.settings.maxConcurrent = 2;
    f.deps.settings.maxWaiting = 3;
  }, 120_000);

  afterAll(async () => {
    await f?.close();
    await pg?.stop();
  }, 60_000);

  const count = async (userId: string) => Number((await f.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from execution where user_id = ?', [userId]))[0]!.n);

  it('takes the slots and the waiting places, then refuses with 429 rate_limited and stores nothing', async () => {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId });
    const run = () => f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} });
    // Two slots and three waiting places, asked for at once.
    const accepted = await Promise.all(Array.from({ length: 5 }, run));
    expect(accepted.every((r) => r.execution?.id)).toBe(true);
    const refused = await run().catch((e: unknown) => ConnectError.from(e));
    expect(refused).toMatchObject({ code: Code.ResourceExhausted, rawMessage: 'At most 3 runs of a user may wait for a slot; try again once some have started' });
    expect(await count(userId)).toBe(5);
    // Another user's queue is their own; an ADMIN has no slots and so no queue.
    const other = randomUUID();
    const theirs = f.scripts.add({ scriptId: randomUUID(), scriptUserId: other });
    await expect(f.client.runScript({ caller: caller(other), idOrSlug: theirs.scriptId, params: {} })).resolves.toBeDefined();
    await expect(f.client.runScript({ caller: caller(randomUUID(), 'ADMIN'), idOrSlug: script.scriptId, params: {} })).resolves.toBeDefined();
  });

  it('takes a run again once a waiting one is no longer waiting', async () => {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId });
    const run = () => f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} });
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await run()).execution!.id);
    await expect(run()).rejects.toThrow(/may wait for a slot/);
    await f.client.cancelExecution({ caller: caller(userId), id: ids[4]! });
    await expect(run()).resolves.toBeDefined();
  });
});
