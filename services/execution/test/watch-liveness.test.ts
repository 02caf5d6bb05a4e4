import { randomUUID } from 'node:crypto';
import { createLogger } from '@gef/common';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { execution } from '@gef/protos';
import { ExecutionEvents } from '../src/events/execution-events';
import { watchExecution, type WatchEvent } from '../src/events/watch-execution';
import { caller, serviceFixture, type ServiceFixture } from './support/service-fixture';
import { silentProxy } from './support/silent-proxy';

const S = execution.ExecutionStatus;
const L = execution.LogLevel;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a stream says, as text; `ended` once it ended by itself. */
function follow(stream: AsyncGenerator<WatchEvent>) {
  const seen: string[] = [];
  let ended = false;
  const done = (async () => {
    for await (const ev of stream) {
      if (ev.kind === 'log') seen.push(ev.log.text);
      else if (ev.kind === 'status') seen.push(`status ${ev.execution.status}`);
    }
    ended = true;
  })();
  return { seen, done, ended: () => ended };
}

async function until(check: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; !check() && Date.now() < end; ) await sleep(20);
  return check();
}

// Followers of an execution when the change announcements do not arrive.
describe('WatchExecution without its announcements', () => {
  let db: TestPostgres;
  let f: ServiceFixture;

  beforeAll(async () => {
    db = await startTestPostgres('gef_execution_watch_liveness');
    f = await serviceFixture(db.url);
  }, 120_000);

  afterAll(async () => {
    await f?.close();
    await db?.stop();
  }, 60_000);

  /** A run a runner has taken: its id, owner and runner token. */
  async function running() {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId });
    const e = (await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} as never })).execution!;
    await f.dispatch();
    const grant = await f.client.startExecutionAttempt({ executionId: e.id, attempt: 1, runner: 'r' });
    return { id: e.id, userId, token: grant.runnerToken };
  }

  it('a follower whose LISTEN connection died silently gets the rest of the run and its end', async () => {
    const proxy = await silentProxy(db.url);
    const events = new ExecutionEvents(proxy.url, createLogger('t', 'silent'), { probeIntervalMs: 200, probeTimeoutMs: 300 });
    // Whether the events claimed to listen each time they said changes may have been missed.
    const resets: boolean[] = [];
    events.subscribeAll((id) => {
      if (id === undefined) resets.push(events.listening);
    });
    await events.start();
    const run = await running();
    const ac = new AbortController();
    const stream = follow(watchExecution(f.deps, events, { userId: run.userId, role: 'USER' }, run.id, undefined, ac.signal));
    try {
      await f.client.appendExecutionLogs({ id: run.id, executionToken: run.token, lines: [{ text: 'before', level: L.INFO, seq: 0 }] });
      expect(await until(() => stream.seen.includes('before'), 3000)).toBe(true);

      proxy.cut(); // the path to the database dies without FIN or RST
      await f.client.appendExecutionLogs({ id: run.id, executionToken: run.token, lines: [{ text: 'after', level: L.INFO, seq: 1 }] });
      await f.client.completeExecutionAttempt({ executionId: run.id, runnerToken: run.token, status: S.FINISHED, resultsJson: '1', lines: [{ text: 'last', level: L.INFO, seq: 2 }] });
      // Well before the 30 s safety re-read: the probe found the connection dead and the
      // resynchronisation after reconnecting woke the stream.
      expect(await until(stream.ended, 5000)).toBe(true);
      expect(stream.seen).toEqual(['status RUNNING', 'Attempt 1 started on runner r', 'before', 'after', 'last', 'status FINISHED']);
      // Lost (no longer claiming to listen), then listening again on a new connection.
      expect(await until(() => events.listening, 3000)).toBe(true);
      expect(resets.slice(0, 3)).toEqual([true, false, true]);
    } finally {
      ac.abort();
      await stream.done;
      await events.stop();
      await proxy.close();
    }
  }, 20_000);

  it('a follower that missed an announcement reads again after a while by itself', async () => {
    // Announcements that never come, and no lost connection to say so.
    const deaf = { subscribe: () => () => undefined, start: () => Promise.resolve() } as unknown as ExecutionEvents;
    const run = await running();
    const ac = new AbortController();
    const stream = follow(watchExecution(f.deps, deaf, { userId: run.userId, role: 'USER' }, run.id, undefined, ac.signal, { resyncMs: 200 }));
    try {
      expect(await until(() => stream.seen.length === 2, 3000)).toBe(true);
      await f.client.appendExecutionLogs({ id: run.id, executionToken: run.token, lines: [{ text: 'unannounced', level: L.INFO, seq: 0 }] });
      expect(await until(() => stream.seen.includes('unannounced'), 3000)).toBe(true);
      await f.client.completeExecutionAttempt({ executionId: run.id, runnerToken: run.token, status: S.FINISHED, resultsJson: '1', lines: [] });
      expect(await until(stream.ended, 3000)).toBe(true);
      expect(stream.seen).toEqual(['status RUNNING', 'Attempt 1 started on runner r', 'unannounced', 'status FINISHED']);
    } finally {
      ac.abort();
      await stream.done;
    }
  });
});
