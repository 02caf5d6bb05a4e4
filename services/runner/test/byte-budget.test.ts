import { ByteBudget } from '../src/caches/byte-budget';

/** A budget whose removals are recorded (and may be held or refused). */
function budget(maxBytes: number, options: { refuse?: Set<string>; hold?: Promise<void> } = {}) {
  const removed: string[] = [];
  const b = new ByteBudget({
    maxBytes,
    remove: async (key) => {
      await options.hold;
      if (options.refuse?.has(key)) return false;
      removed.push(key);
      return true;
    },
  });
  return { b, removed };
}

describe('ByteBudget', () => {
  it('removes the least recently used entries until the rest fit', async () => {
    const { b, removed } = budget(300);
    b.add('a', 100).release();
    b.add('b', 100).release();
    b.add('c', 100).release();
    await b.idle();
    expect(removed).toEqual([]);
    // a used again: b is now the least recently used.
    (await b.acquire('a'))!.release();
    b.add('d', 100).release();
    await b.idle();
    expect(removed).toEqual(['b']);
    expect(b.keys()).toEqual(['c', 'a', 'd']);
    expect(b.bytes).toBe(300);
  });

  it('never removes an entry with a reference taken, and removes it once given back when it is the least recently used', async () => {
    const { b, removed } = budget(200);
    const held = b.add('a', 100);
    b.add('b', 100).release();
    b.add('c', 100).release();
    await b.idle();
    expect(removed).toEqual(['b']);
    held.release();
    held.release();
    expect(b.refs('a')).toBe(0);
    b.add('d', 100).release();
    await b.idle();
    expect(removed).toEqual(['b', 'a']);
    expect(b.keys()).toEqual(['c', 'd']);
  });

  it('keeps an entry bigger than the whole budget alone, until another is used', async () => {
    const { b, removed } = budget(250);
    b.add('a', 100).release();
    b.add('b', 100).release();
    b.add('big', 1000).release();
    await b.idle();
    expect(removed).toEqual(['a', 'b']);
    expect(b.keys()).toEqual(['big']);
    b.add('c', 100).release();
    await b.idle();
    expect(removed).toEqual(['a', 'b', 'big']);
    expect(b.keys()).toEqual(['c']);
  });

  it('lets whoever waits for an entry just added take it before any removal', async () => {
    const { b, removed } = budget(100);
    // Two made in the same turn: a is no longer the newest when b comes, but its waiter
    // (resuming in this turn) takes it before the removal that makes room.
    b.add('a', 100).release();
    b.add('b', 100).release();
    const a = await b.acquire('a');
    await b.idle();
    expect(a).toBeDefined();
    // a, in use and now the most recently used, stays; b makes room.
    expect(removed).toEqual(['b']);
    a!.release();
    await b.idle();
    expect(b.keys()).toEqual(['a']);
  });

  it('keeps an entry its removal refuses (used by another process), and tries the next', async () => {
    const { b, removed } = budget(200, { refuse: new Set(['a']) });
    b.add('a', 100).release();
    b.add('b', 100).release();
    b.add('c', 100).release();
    await b.idle();
    expect(removed).toEqual(['b']);
    expect(b.keys()).toEqual(['a', 'c']);
  });

  it('makes whoever wants an entry being removed wait for the removal, then finds it gone', async () => {
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    const { b, removed } = budget(100, { hold });
    b.add('a', 100).release();
    b.add('b', 100).release();
    await new Promise((r) => setImmediate(r));
    let found: unknown = 'waiting';
    const wanted = b.acquire('a').then((lease) => (found = lease));
    await new Promise((r) => setTimeout(r, 10));
    expect(found).toBe('waiting');
    release();
    await wanted;
    expect(found).toBeUndefined();
    expect(removed).toEqual(['a']);
  });

  it('counts what an earlier process left, oldest first, and forgets what went away otherwise', async () => {
    const { b, removed } = budget(150);
    b.recover('old', 100);
    b.recover('newer', 100);
    await b.idle();
    expect(removed).toEqual(['old']);
    b.forget('newer');
    expect([b.keys(), b.bytes]).toEqual([[], 0]);
  });
});
