import { randomUUID } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import { execution } from '@gef/protos';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { caller, serviceFixture, type ServiceFixture } from './support/service-fixture';

// `filter=<field> like <value>` on a real PostgreSQL: `%` is the one wildcard (CONTRACT §9);
// every other character, `_` and `\` included, matches itself, and no value is a 500.
describe('like filters', () => {
  let pg: TestPostgres;
  let f: ServiceFixture;
  const userId = randomUUID();

  beforeAll(async () => {
    pg = await startTestPostgres('gef_execution_like_test');
    f = await serviceFixture(pg.url);
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId });
    for (const status of ['FINISHED', 'FAILED']) {
      const e = (await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} })).execution!;
      await f.orm.em.fork().execute('update execution set status = ? where id = ?', [status, e.id]);
    }
  }, 120_000);

  afterAll(async () => {
    await f?.close();
    await pg?.stop();
  }, 60_000);

  async function statuses(filter: string): Promise<string[]> {
    const res = await f.client.listExecutions({ caller: caller(userId), filter, sort: 'status' });
    return res.executions.map((e) => execution.ExecutionStatus[e.status]);
  }

  it('matches case-insensitively with % as the wildcard', async () => {
    expect(await statuses('status like fini%')).toEqual(['FINISHED']);
    expect(await statuses('status like %ED')).toEqual(['FAILED', 'FINISHED']);
    expect(await statuses('status like failed')).toEqual(['FAILED']);
  });

  it.each(['status like \\', 'status like %\\', 'status like FINISHE\\', 'status like FINISHED\\', 'status like %\\%', 'status like \\_%'])('answers %j (a trailing or lone backslash) with a list, not an error', async (filter) => {
    expect(await statuses(filter)).toEqual([]);
  });

  it('takes _ and ! as themselves, not as a wildcard or an escape', async () => {
    expect(await statuses('status like FINISHE_')).toEqual([]);
    expect(await statuses('status like F_%')).toEqual([]);
    expect(await statuses('status like !%')).toEqual([]);
    expect(await statuses('status like FAILED!')).toEqual([]);
  });

  it('still refuses like on a field that is not text (400)', async () => {
    const err = await f.client.listExecutions({ caller: caller(userId), filter: 'progress like 5%' }).catch((e: unknown) => ConnectError.from(e));
    expect(err).toMatchObject({ code: Code.InvalidArgument });
  });
});
