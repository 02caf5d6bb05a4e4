import pino from 'pino';
import { StreamFollower } from '../src/streams/stream-follower';

/** Server streams under the test's control: messages pushed in, ended by their abort. */
function fakeStreams() {
  const opened: { signal: AbortSignal; push: (m: string) => void; end: () => void }[] = [];
  const open = (signal: AbortSignal): AsyncIterable<string> => {
    const queue: string[] = [];
    let wake: (() => void) | undefined;
    let ended = false;
    opened.push({
      signal,
      push: (m) => {
        queue.push(m);
        wake?.();
      },
      end: () => {
        ended = true;
        wake?.();
      },
    });
    signal.addEventListener('abort', () => wake?.());
    return (async function* () {
      for (;;) {
        if (signal.aborted) throw new Error('the call was cancelled');
        if (ended) return;
        const next = queue.shift();
        if (next !== undefined) yield next;
        else await new Promise<void>((r) => (wake = r));
      }
    })();
  };
  return { opened, open };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
};

describe('StreamFollower', () => {
  it('replaces a stream after so many messages, make before break: no gap, nothing lost', async () => {
    const { opened, open } = fakeStreams();
    const seen: string[] = [];
    let gaps = 0;
    const follower = new StreamFollower<string>({ name: 'test', open, onMessage: (m) => seen.push(m), onGap: () => gaps++, logger: pino({ level: 'silent' }), renewAfterMessages: 3 });
    const started = follower.start(1000);
    await until(() => opened.length === 1);
    for (const m of ['a1', 'a2', 'a3']) opened[0]!.push(m);
    await started;
    // The third message opens the next stream; the first goes on until the next has spoken.
    await until(() => opened.length === 2);
    opened[0]!.push('a4');
    await until(() => seen.includes('a4'));
    expect(opened[0]!.signal.aborted).toBe(false);
    opened[1]!.push('b1');
    await until(() => opened[0]!.signal.aborted);
    opened[1]!.push('b2');
    await until(() => seen.includes('b2'));
    expect(seen).toEqual(['a1', 'a2', 'a3', 'a4', 'b1', 'b2']);
    expect(gaps).toBe(1);
    expect(follower.isConnected).toBe(true);
    expect(opened[1]!.signal.aborted).toBe(false);

    follower.stop();
    expect(opened[1]!.signal.aborted).toBe(true);
  });

  it('reconnects a stream that ended, with a gap on each side', async () => {
    const { opened, open } = fakeStreams();
    const seen: string[] = [];
    let gaps = 0;
    const follower = new StreamFollower<string>({ name: 'test', open, onMessage: (m) => seen.push(m), onGap: () => gaps++, logger: pino({ level: 'silent' }) });
    void follower.start(0);
    await until(() => opened.length === 1);
    opened[0]!.push('a1');
    await until(() => seen.length === 1);
    opened[0]!.end();
    await until(() => !follower.isConnected);
    expect(gaps).toBe(2);
    await until(() => opened.length === 2);
    opened[1]!.push('b1');
    await until(() => follower.isConnected);
    expect(seen).toEqual(['a1', 'b1']);
    expect(gaps).toBe(3);
    follower.stop();
  });

  it('counts as down, since ever, until a stream has caught up, and from the loss after that', async () => {
    const { opened, open } = fakeStreams();
    const seen: string[] = [];
    const follower = new StreamFollower<string>({ name: 'test', open, onMessage: (m) => seen.push(m), caughtUp: (m) => m === 'synced', logger: pino({ level: 'silent' }) });
    await follower.start(50);
    await until(() => opened.length === 1);
    opened[0]!.push('backlog-1');
    opened[0]!.push('backlog-2');
    await until(() => seen.length === 2);
    expect({ connected: follower.isConnected, down: follower.downForMs }).toEqual({ connected: false, down: Infinity });
    opened[0]!.push('synced');
    await until(() => follower.isConnected);
    expect(follower.downForMs).toBe(0);
    opened[0]!.end();
    await until(() => !follower.isConnected);
    expect(follower.downForMs).toBeLessThan(5_000);
    // The next stream counts once it has caught up too.
    await until(() => opened.length === 2);
    opened[1]!.push('backlog-1');
    await until(() => seen.length === 4);
    expect(follower.isConnected).toBe(false);
    opened[1]!.push('synced');
    await until(() => follower.isConnected);
    follower.stop();
  });

  it('renews a stream only once it has caught up, however long the backlog every stream replays', async () => {
    const { opened, open } = fakeStreams();
    const backlog = ['r1', 'r2', 'r3', 'r4', 'r5'];
    const seen: string[] = [];
    const follower = new StreamFollower<string>({ name: 'test', open, onMessage: (m) => seen.push(m), caughtUp: (m) => m === 'synced', logger: pino({ level: 'silent' }), renewAfterMessages: 3 });
    void follower.start(0);
    await until(() => opened.length === 1);
    for (const m of [...backlog, 'synced']) opened[0]!.push(m);
    await until(() => follower.isConnected);
    // Five backlog messages, more than a renewal's three: no other stream was opened meanwhile.
    expect(opened).toHaveLength(1);
    expect(seen).toEqual([...backlog, 'synced']);
    for (const m of ['live-1', 'live-2', 'live-3']) opened[0]!.push(m);
    // Three messages after catching up: the next stream opens, replays the backlog, and takes over.
    await until(() => opened.length === 2);
    opened[1]!.push('r1');
    await until(() => opened[0]!.signal.aborted);
    expect(follower.isConnected).toBe(true);
    for (const m of [...backlog.slice(1), 'live-1', 'live-2', 'live-3', 'synced']) opened[1]!.push(m);
    await until(() => seen.filter((m) => m === 'synced').length === 2);
    // Its backlog did not renew it before it caught up either.
    expect(opened).toHaveLength(2);
    opened[1]!.push('live-4');
    await until(() => seen.at(-1) === 'live-4');
    follower.stop();
  });

  it('drops a stream that opened but fell silent before catching up', async () => {
    const { opened, open } = fakeStreams();
    const follower = new StreamFollower<string>({ name: 'test', open, onMessage: () => undefined, caughtUp: () => false, logger: pino({ level: 'silent' }), silenceMs: 1 });
    void follower.start(0);
    await until(() => opened.length === 1);
    // The watchdog looks every 5 s.
    for (let i = 0; i < 140 && !opened[0]!.signal.aborted; i++) await new Promise((r) => setTimeout(r, 50));
    expect(opened[0]!.signal.aborted).toBe(true);
    follower.stop();
  }, 15_000);
});
