import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { execution } from '@gef/protos';
import { createExecutionActivities } from '../src/activities';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { caller, serviceFixture, type ServiceFixture, logRows } from './support/service-fixture';

const S = execution.ExecutionStatus;
const L = execution.LogLevel;

/**
 * Issue 6, faults: duplicate delivery. Temporal delivers an activity at least once: when a
 * completion is lost the same activity runs again with the same input. Each state-changing
 * activity of the execution service (and each RPC a runner's retried activity repeats),
 * called twice with the same input against a real PostgreSQL, answers the same and changes
 * nothing the second time.
 */
describe('execution service: an activity delivered twice', () => {
  let pg: TestPostgres;
  let f: ServiceFixture;
  let activities: ReturnType<typeof createExecutionActivities>;

  beforeAll(async () => {
    pg = await startTestPostgres('gef_execution_dup');
    f = await serviceFixture(pg.url);
    activities = createExecutionActivities(f.deps);
  }, 120_000);

  afterAll(async () => {
    await f?.close();
    await pg?.stop();
  }, 60_000);

  /** Everything of one user's executions that a change would show: rows and log lines. */
  async function stateOf(userId: string): Promise<unknown> {
    const em = f.orm.em.fork();
    const rows = await em.execute('select * from execution where user_id = ? order by id', [userId]);
    const logs = await em.execute(
      'select l.id, l.execution_id, l.attempt, l.seq, l.level, l.text, l.register_date from execution_log l join execution e on e.id = l.execution_id where e.user_id = ? order by l.id',
      [userId],
    );
    const dispatch = await em.execute('select d.* from execution_dispatch d join execution e on e.id = d.execution_id where e.user_id = ? order by 1', [userId]);
    return { rows, logs, dispatch };
  }

  /** Calls `fn` twice; the second answer equals the first and the state is unchanged by it. */
  async function twice<T>(userId: string, fn: () => Promise<T>): Promise<T> {
    const first = await fn();
    const before = await stateOf(userId);
    const second = await fn();
    expect(second).toEqual(first);
    expect(await stateOf(userId)).toEqual(before);
    return first;
  }

  function someone() {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId, version: 1, public: true });
    return { userId, script };
  }

  async function run(userId: string, scriptId: string) {
    const res = await f.client.runScript({ caller: caller(userId), idOrSlug: scriptId, params: {} });
    await f.dispatch();
    return res.execution!;
  }

  /** A USER's three runs that took the three slots when accepted, and a fourth that waits. */
  async function slotsTaken() {
    const { userId, script } = someone();
    const granted = [await run(userId, script.scriptId), await run(userId, script.scriptId), await run(userId, script.scriptId)];
    const waiting = await run(userId, script.scriptId);
    return { userId, a: granted[0]!, waiting };
  }

  it('claimExecutionSlot: a granted slot, and a run queued behind it', async () => {
    const { userId, a, waiting } = await slotsTaken();
    expect(await twice(userId, () => activities.claimExecutionSlot({ executionId: a.id, userId, limit: 3 }))).toEqual({ outcome: 'granted' });
    expect(await twice(userId, () => activities.claimExecutionSlot({ executionId: waiting.id, userId, limit: 3 }))).toEqual({ outcome: 'waiting' });
  });

  it('releaseExecutionSlot and endExecution', async () => {
    const { userId, a, waiting } = await slotsTaken();
    await activities.claimExecutionSlot({ executionId: waiting.id, userId, limit: 3 });
    const ended = await twice(userId, () => activities.endExecution({ executionId: a.id, status: 'FAILED', reason: 'the runner gave up' }));
    expect(ended).toEqual({ status: 'FAILED' });
    const released = await twice(userId, () => activities.releaseExecutionSlot({ executionId: a.id, userId, limit: 3 }));
    expect(released.wake).toEqual([waiting.id]);
  });

  it('a runner starting and completing the same attempt twice (its activity retried)', async () => {
    const { userId, script } = someone();
    const e = await run(userId, script.scriptId);
    await activities.claimExecutionSlot({ executionId: e.id, userId, limit: 3 });
    const start = () => f.client.startExecutionAttempt({ executionId: e.id, attempt: 1, runner: 'runner-dup' });
    const first = await start();
    const before = await stateOf(userId);
    const second = await start();
    expect(second.proceed).toBe(true);
    expect({ ...second, token: '', runnerToken: '' }).toEqual({ ...first, token: '', runnerToken: '' });
    expect(await stateOf(userId)).toEqual(before);

    const lines = [{ text: 'out 1', level: L.INFO, seq: 1 }, { text: 'out 2', level: L.INFO, seq: 2 }];
    const append = () => f.client.appendExecutionLogs({ id: e.id, executionToken: first.runnerToken, lines, progress: 40 });
    await append();
    const afterAppend = await stateOf(userId);
    expect((await append()).appended).toBe(0);
    expect(await stateOf(userId)).toEqual(afterAppend);

    const complete = () =>
      f.client.completeExecutionAttempt({ executionId: e.id, runnerToken: first.runnerToken, status: S.FINISHED, resultsJson: '{"ok":true}', lines: [{ text: 'out 3', level: L.INFO, seq: 3 }] });
    const done = await complete();
    expect(done.applied).toBe(true);
    const afterComplete = await stateOf(userId);
    const again = await complete();
    expect(again.applied).toBe(false);
    expect(again.status).toBe(S.FINISHED);
    expect(await stateOf(userId)).toEqual(afterComplete);
    const log = await f.client.listExecutionLogs({ id: e.id, caller: caller(userId) });
    expect(logRows(log).filter((l) => /^out \d$/.test(l.text)).map((l) => l.text)).toEqual(['out 1', 'out 2', 'out 3']);
  });

  it('deleteExecutionsOfUser: the second run deletes nothing and touches no one else', async () => {
    const gone = someone();
    const other = someone();
    await run(gone.userId, gone.script.scriptId);
    await run(gone.userId, gone.script.scriptId);
    const kept = await run(other.userId, gone.script.scriptId);
    const env = new MockActivityEnvironment();
    expect(await env.run(activities.deleteExecutionsOfUser, gone.userId)).toEqual({ executions: 2 });
    const othersBefore = await stateOf(other.userId);
    expect(await env.run(activities.deleteExecutionsOfUser, gone.userId)).toEqual({ executions: 0 });
    expect(await stateOf(other.userId)).toEqual(othersBefore);
    expect(await stateOf(gone.userId)).toEqual({ rows: [], logs: [], dispatch: [] });
    expect((await f.client.getExecution({ id: kept.id, caller: caller(other.userId) })).execution!.id).toBe(kept.id);
  });

  it('deleteExecutionsOfUser stops, deleting no run, once Temporal no longer wants the attempt', async () => {
    const gone = someone();
    await run(gone.userId, gone.script.scriptId);
    const env = new MockActivityEnvironment();
    env.cancel('TIMED_OUT');
    await expect(env.run(activities.deleteExecutionsOfUser, gone.userId)).rejects.toThrow('the attempt is no longer wanted');
    expect(((await stateOf(gone.userId)) as { rows: unknown[] }).rows).toHaveLength(1);
  });
});
