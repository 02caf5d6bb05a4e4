import { randomUUID } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import type { EntityManager } from '@gef/common/orm';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { execution } from '@gef/protos';
import { claimSlot } from '../src/domain/run-slots';
import { noRunnerText, runnerOnlineSeconds } from '../src/domain/runner-presence';
import { caller, logRows, serviceFixture, type ServiceFixture } from './support/service-fixture';

const S = execution.ExecutionStatus;

/**
 * Runners report themselves (ReportRunner) and a run handed to the runners while none is
 * online says so in its log, against a real PostgreSQL.
 */
describe('runners online', () => {
  let pg: TestPostgres;
  let f: ServiceFixture;

  beforeAll(async () => {
    pg = await startTestPostgres('gef_execution_runner_presence');
    f = await serviceFixture(pg.url, { runners: true });
  }, 120_000);

  afterAll(async () => {
    await f?.close();
    await pg?.stop();
  }, 60_000);

  beforeEach(async () => {
    await f.orm.em.fork().execute('delete from runner_presence');
    f.deps.runners!.heard(true);
  });

  const report = (over: Partial<{ instance: string; runner: string; slots: number; busy: number; stopping: boolean }> = {}) =>
    f.client.reportRunner({ instance: randomUUID(), runner: 'host-a', slots: 4, busy: 0, ...over });
  const rows = () => f.orm.em.fork().execute<{ instance: string; runner: string; slots: number; busy: number }[]>('select instance, runner, slots, busy from runner_presence order by runner, instance');

  function someone() {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId, version: 1 });
    return { userId, script };
  }

  const texts = async (id: string, userId: string) => logRows(await f.client.listExecutionLogs({ id, caller: caller(userId) })).map((l) => l.text);

  it('keeps one row per runner process, replaced at each report, and no more once it stops', async () => {
    const a = randomUUID();
    const b = randomUUID();
    expect((await report({ instance: a, busy: 1 })).everySeconds).toBe(15);
    await report({ instance: a, busy: 3, runner: '  host-a  ' });
    await report({ instance: b.toUpperCase(), runner: 'host-b', slots: 8 });
    expect(await rows()).toEqual([
      { instance: a, runner: 'host-a', slots: 4, busy: 3 },
      { instance: b, runner: 'host-b', slots: 8, busy: 0 },
    ]);
    expect(await f.deps.runners!.count()).toEqual({ runners: 2, slots: 12, busy: 3 });
    await report({ instance: a, stopping: true });
    expect(await f.deps.runners!.count()).toEqual({ runners: 1, slots: 8, busy: 0 });
    // A report of the stopped process that arrives after its last changes nothing.
    await report({ instance: a, busy: 2 });
    expect(await f.deps.runners!.count()).toEqual({ runners: 1, slots: 8, busy: 0 });
    // Not heard of for longer than the online window: not online, though its row stays a day.
    await f.orm.em.fork().execute(`update runner_presence set seen_at = now() - make_interval(secs => ?)`, [runnerOnlineSeconds + 1]);
    expect(await f.deps.runners!.count()).toEqual({ runners: 0, slots: 0, busy: 0 });
    await f.orm.em.fork().execute(`update runner_presence set seen_at = now() - interval '25 hours'`);
    const c = randomUUID();
    await report({ instance: c });
    expect((await rows()).map((r) => r.instance)).toEqual([c]);
  });

  it('asks on the caller\'s own connection, in its transaction, and leaves it usable', async () => {
    // A row only the transaction sees: the answer comes from its connection, not another
    // from the pool (which could wait behind the locks the caller holds).
    const undone = new Error('undone');
    const inUndoneTransaction = (work: (em: EntityManager) => Promise<void>) =>
      expect(
        f.orm.em.fork().transactional(async (em) => {
          await work(em);
          throw undone;
        }),
      ).rejects.toBe(undone);
    await inUndoneTransaction(async (em) => {
      await em.execute("insert into runner_presence (instance, runner, slots, busy) values (?, 'host-t', 1, 0)", [randomUUID()]);
      expect(await f.deps.runners!.any(em)).toBe(true);
      expect(await f.deps.runners!.count()).toEqual({ runners: 0, slots: 0, busy: 0 });
    });
    f.deps.runners!.heard(true);
    // A read that fails (here: its table is away) is undone to its savepoint; the transaction goes on.
    await inUndoneTransaction(async (em) => {
      await em.execute('alter table runner_presence rename to runner_presence_away');
      await expect(f.deps.runners!.any(em)).rejects.toThrow();
      await em.execute('alter table runner_presence_away rename to runner_presence');
      expect(await em.execute('select 1 as one')).toEqual([{ one: 1 }]);
    });
    f.deps.runners!.heard(true);
    expect(await f.orm.em.fork().transactional((em) => f.deps.runners!.any(em))).toBe(false);
  });

  it('refuses a report that is not a process id or whole counts, and changes nothing', async () => {
    for (const bad of [{ instance: 'runner-1' }, { instance: '' }, { slots: 100_001 }, { busy: 4_000_000_000 }]) {
      const err = await report(bad).catch((e: unknown) => ConnectError.from(e));
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    }
    expect(await rows()).toEqual([]);
  });

  it('says so in the log of a run made READY at its start while no runner is online', async () => {
    const { userId, script } = someone();
    const res = await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} });
    await f.dispatch();
    const e = (await f.client.getExecution({ id: res.execution!.id, caller: caller(userId) })).execution!;
    expect(e.status).toBe(S.READY);
    expect(await texts(e.id, userId)).toEqual([noRunnerText]);
    const [line] = logRows(await f.client.listExecutionLogs({ id: e.id, caller: caller(userId) }));
    expect(line!.level).toBe(execution.LogLevel.WARNING);

    // With a runner online, nothing is said.
    await report();
    const other = await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} });
    await f.dispatch();
    expect((await f.client.getExecution({ id: other.execution!.id, caller: caller(userId) })).execution!.status).toBe(S.READY);
    expect(await texts(other.execution!.id, userId)).toEqual([]);
  });

  it('says so when a waiting run takes its slot while no runner is online', async () => {
    const { userId, script } = someone();
    await report();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} })).execution!.id);
    await f.dispatch();
    // Three took their slots when accepted; the fourth waits.
    expect(await claimSlot(f.deps, { executionId: ids[3]!, userId, limit: 3 })).toEqual({ outcome: 'waiting' });
    await f.orm.em.fork().execute('delete from runner_presence');
    f.deps.runners!.heard(true);
    await f.client.updateExecution({ id: ids[0]!, caller: caller(randomUUID(), 'ADMIN'), status: S.FINISHED });
    await f.orm.em.fork().execute('update execution set slot_held = false where id = ?', [ids[0]]);
    expect(await claimSlot(f.deps, { executionId: ids[3]!, userId, limit: 3 })).toEqual({ outcome: 'granted' });
    expect((await f.client.getExecution({ id: ids[3]!, caller: caller(userId) })).execution!.status).toBe(S.READY);
    expect(await texts(ids[3]!, userId)).toEqual([expect.stringMatching(/^Waiting for a free slot/), noRunnerText]);
    // The runs made READY while a runner was online said nothing.
    expect(await texts(ids[1]!, userId)).toEqual([]);
  });
});
