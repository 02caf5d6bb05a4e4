import client from 'prom-client';
import { entryOverhead, ReadCache } from '../src/cache/read-cache';

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const make = (overrides: Partial<ConstructorParameters<typeof ReadCache<string>>[0]> = {}) =>
  new ReadCache<string>({ name: 'test', maxEntries: 100, ttlMs: 60_000, live: () => true, ...overrides });

/** What an entry of `value` in `variant` weighs when values weigh their length. */
const w = (value: string, variant = '') => value.length + variant.length + entryOverhead;

describe('ReadCache', () => {
  it('loads once and then answers from memory', async () => {
    const cache = make();
    const load = jest.fn(async () => 'v1');
    expect(await cache.read('a', load)).toBe('v1');
    expect(await cache.read('a', load)).toBe('v1');
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('loads again after an invalidation of the key, and only that key', async () => {
    const cache = make();
    await cache.read('a', async () => 'a1');
    await cache.read('b', async () => 'b1');
    cache.invalidate('a');
    expect(await cache.read('a', async () => 'a2')).toBe('a2');
    expect(await cache.read('b', async () => 'b2')).toBe('b1');
  });

  it('never stores a load that an invalidation of its key overtook', async () => {
    const cache = make();
    const slow = deferred<string>();
    const reading = cache.read('a', () => slow.promise);
    cache.invalidate('a');
    slow.resolve('stale');
    expect(await reading).toBe('stale');
    expect(await cache.read('a', async () => 'fresh')).toBe('fresh');
    expect(await cache.read('a', async () => 'later')).toBe('fresh');
  });

  it('stores a load begun after the invalidation', async () => {
    const cache = make();
    cache.invalidate('a');
    await cache.read('a', async () => 'v');
    expect(await cache.read('a', async () => 'other')).toBe('v');
  });

  it('never stores a load that a clear overtook', async () => {
    const cache = make();
    const slow = deferred<string>();
    const reading = cache.read('a', () => slow.promise);
    cache.clear();
    slow.resolve('stale');
    await reading;
    expect(await cache.read('a', async () => 'fresh')).toBe('fresh');
  });

  it('stays safe when the per-key history is forgotten', async () => {
    const cache = make({ maxEntries: 2 });
    const slow = deferred<string>();
    const reading = cache.read('a', () => slow.promise);
    cache.invalidate('a');
    cache.invalidate('b');
    cache.invalidate('c'); // history over its bound: every load under way is refused
    slow.resolve('stale');
    await reading;
    expect(await cache.read('a', async () => 'fresh')).toBe('fresh');
  });

  it('bypasses itself while invalidations are not arriving', async () => {
    let live = false;
    const cache = make({ live: () => live });
    await cache.read('a', async () => 'v1');
    expect(cache.size).toBe(0);
    live = true;
    await cache.read('a', async () => 'v2');
    live = false;
    expect(await cache.read('a', async () => 'v3')).toBe('v3');
  });

  it('expires entries after the TTL and is off with a TTL of 0', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    try {
      const cache = make({ ttlMs: 1000 });
      await cache.read('a', async () => 'v1');
      jest.setSystemTime(1_000_500);
      expect(await cache.read('a', async () => 'v2')).toBe('v1');
      jest.setSystemTime(1_001_001);
      expect(await cache.read('a', async () => 'v3')).toBe('v3');
    } finally {
      jest.useRealTimers();
    }
    const off = make({ ttlMs: 0 });
    await off.read('a', async () => 'v1');
    expect(await off.read('a', async () => 'v2')).toBe('v2');
  });

  it('lets go of expired keys nobody reads again, and of invalidations older than any load', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    try {
      const cache = make({ ttlMs: 1000, maxEntries: 100_000 });
      for (let i = 0; i < 50; i++) await cache.read(`ended-${i}`, async () => 'v');
      jest.setSystemTime(1_002_000);
      await cache.read('fresh', async () => 'v');
      expect(cache.size).toBe(1);

      const slow = deferred<string>();
      const pending = cache.read('k', () => slow.promise);
      cache.invalidate('k');
      for (let i = 0; i < 20; i++) cache.invalidate(`changed-${i}`);
      expect(cache.invalidationsKept).toBe(21);
      jest.setSystemTime(1_002_000 + 121_000);
      cache.invalidate('later');
      expect(cache.invalidationsKept).toBe(1);
      // The load that began before k's (forgotten) invalidation is still not stored.
      slow.resolve('stale');
      expect(await pending).toBe('stale');
      expect(await cache.read('k', async () => 'new')).toBe('new');
    } finally {
      jest.useRealTimers();
    }
  });

  it('drops the least recently used entry beyond its size', async () => {
    const cache = make({ maxEntries: 2 });
    await cache.read('a', async () => 'a');
    await cache.read('b', async () => 'b');
    await cache.read('a', async () => 'x'); // a is now the most recent
    await cache.read('c', async () => 'c');
    expect(cache.size).toBe(2);
    expect(await cache.read('a', async () => 'a2')).toBe('a');
    expect(await cache.read('b', async () => 'b2')).toBe('b2');
  });

  it('does not store failures, and counts hits, misses and bypasses', async () => {
    const registry = new client.Registry();
    let live = true;
    const cache = make({ registry, live: () => live });
    await expect(cache.read('a', async () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    await cache.read('a', async () => 'v');
    await cache.read('a', async () => 'w');
    live = false;
    await cache.read('a', async () => 'w');
    const values = (await registry.getSingleMetric('gef_gateway_cache_lookups_total')!.get()).values;
    const count = (result: string) => values.find((v) => v.labels['result'] === result)?.value;
    expect([count('miss'), count('hit'), count('bypass')]).toEqual([2, 1, 1]);
  });
});

describe('ReadCache variants', () => {
  it('keeps variants of a key apart and drops them together', async () => {
    const cache = make();
    await cache.read('exec', async () => 'as owner', 'owner');
    await cache.read('exec', async () => 'as admin', 'admin');
    expect(await cache.read('exec', async () => 'x', 'owner')).toBe('as owner');
    expect(await cache.read('exec', async () => 'x', 'admin')).toBe('as admin');
    cache.invalidate('exec');
    expect(await cache.read('exec', async () => 'owner 2', 'owner')).toBe('owner 2');
    expect(await cache.read('exec', async () => 'admin 2', 'admin')).toBe('admin 2');
  });
});

describe('ReadCache weights', () => {
  const weighed = (maxWeight: number) => make({ maxWeight, weigh: (v) => v.length });

  it('drops the least recently used keys to stay within the weight, and counts what it holds', async () => {
    const cache = weighed(w('aaaa') + w('bbbb') + 2);
    await cache.read('a', async () => 'aaaa');
    await cache.read('b', async () => 'bbbb');
    expect(cache.heldWeight).toBe(w('aaaa') + w('bbbb'));
    await cache.read('a', async () => 'x'); // a is now the most recently used
    await cache.read('c', async () => 'cccc');
    expect(cache.heldWeight).toBe(w('aaaa') + w('cccc'));
    expect(await cache.read('a', async () => 'a again')).toBe('aaaa');
    expect(await cache.read('b', async () => 'b2')).toBe('b2');
  });

  it('never stores a value heavier than the whole budget, and keeps the rest', async () => {
    const cache = weighed(w('aa') + w('b') + 5);
    await cache.read('a', async () => 'aa');
    await cache.read('big', async () => 'x'.repeat(200));
    expect(await cache.read('big', async () => 'b')).toBe('b');
    expect(await cache.read('a', async () => 'other')).toBe('aa');
  });

  it('gives back the weight of variants replaced, invalidated, expired or cleared', async () => {
    let now = 1_000_000;
    jest.spyOn(Date, 'now').mockImplementation(() => now);
    try {
      const cache = make({ maxWeight: 10_000, weigh: (v) => v.length, ttlMs: 1000 });
      await cache.read('a', async () => '12345', 'one');
      await cache.read('a', async () => '123', 'two');
      expect(cache.heldWeight).toBe(w('12345', 'one') + w('123', 'two'));
      cache.invalidate('a');
      expect(cache.heldWeight).toBe(0);
      await cache.read('b', async () => '1234');
      now += 2000;
      await cache.read('b', async () => '12'); // expired: loaded again and replaced
      expect(cache.heldWeight).toBe(w('12'));
      now += 2000;
      await cache.read('c', async () => '1'); // storing purges the expired b
      expect(cache.heldWeight).toBe(w('1'));
      cache.clear();
      expect(cache.heldWeight).toBe(0);
    } finally {
      jest.restoreAllMocks();
    }
  });
});

/**
 * One caller asking for a new page (`page=N&exclude=,,,…`) on every request, under one key:
 * each is a new variant, and every one must count.
 */
describe('ReadCache bounds over variants', () => {
  it('counts every variant of a key against maxEntries, dropping the key\'s oldest once it is alone', async () => {
    const cache = make({ maxEntries: 10 });
    await cache.read('other', async () => 'o');
    for (let n = 0; n < 100; n++) await cache.read('owner', async () => `page ${n}`, `page=${n}`);
    expect(cache.entriesHeld).toBe(10);
    expect(cache.size).toBe(1);
    // The newest stay, the oldest and the other key went.
    expect(await cache.read('owner', async () => 'again', 'page=99')).toBe('page 99');
    expect(await cache.read('owner', async () => 'again', 'page=90')).toBe('page 90');
    expect(await cache.read('owner', async () => 'again', 'page=0')).toBe('again');
    expect(await cache.read('other', async () => 'o2')).toBe('o2');
  });

  it('weighs the variant and a fixed overhead, so values weighing 0 are bounded by maxWeight', async () => {
    const maxWeight = 100_000;
    const cache = make({ maxEntries: 1_000_000, maxWeight, weigh: () => 0 });
    const variant = (n: number) => `/api/v1/execution/user?page=${n}&exclude=${','.repeat(8000)}`;
    for (let n = 0; n < 1000; n++) await cache.read(`user-${n % 5}`, async () => '', variant(n));
    // The newest stay: the least recently used keys go whole, so maybe fewer than fit.
    const each = variant(999).length + entryOverhead;
    expect(cache.heldWeight).toBeLessThanOrEqual(maxWeight);
    expect(cache.entriesHeld).toBeGreaterThan(0);
    expect(cache.entriesHeld).toBeLessThanOrEqual(Math.floor(maxWeight / each));
    expect(cache.heldWeight).toBe(cache.entriesHeld * each);
    expect(await cache.read('user-4', async () => 'reloaded', variant(999))).toBe('');
    expect(await cache.read('user-0', async () => 'reloaded', variant(0))).toBe('reloaded');
  });

  it('drops the expired variants of a key that keeps being used, while another key stays live', async () => {
    let now = 1_000_000;
    const ttlMs = 1000;
    const cache = make({ maxEntries: 1_000_000, ttlMs, now: () => now });
    // Every 100 ms a new page of `busy`; every 500 ms a new page of `other`, so that some
    // key before `busy` always holds a live entry.
    for (let step = 0; step <= 50; step++, now += 100) {
      if (step % 5 === 0) await cache.read('other', async () => `other ${step}`, `page=${step}`);
      await cache.read('busy', async () => `busy ${step}`, `page=${step}`);
    }
    now -= 100; // the time of the last store
    // Stored within the TTL: the last 10 pages of busy, and 2 of other.
    expect(cache.entriesHeld).toBe(10 + 2);
    expect(cache.heldWeight).toBe((10 + 2) * ('page=50'.length + entryOverhead));
    expect(await cache.read('other', async () => 'reloaded', 'page=50')).toBe('other 50');
    expect(await cache.read('busy', async () => 'reloaded', 'page=41')).toBe('busy 41');
  });

  it('drops every variant of a key on invalidation, and counts none of them after', async () => {
    const cache = make({ maxEntries: 3 });
    for (let n = 0; n < 3; n++) await cache.read('a', async () => `a${n}`, `v${n}`);
    cache.invalidate('a');
    expect(cache.entriesHeld).toBe(0);
    for (let n = 0; n < 3; n++) await cache.read('b', async () => `b${n}`, `v${n}`);
    expect(await cache.read('b', async () => 'x', 'v0')).toBe('b0');
    cache.clear();
    expect(cache.entriesHeld).toBe(0);
  });
});

describe('ReadCache siblings', () => {
  /** Two caches of the same name in two processes, joined as the cluster joins workers. */
  function pair(ttlMs = 60_000) {
    const listeners: Array<(cache: string, keys: string[]) => void> = [];
    const sent: Array<{ cache: string; keys: string[] }> = [];
    const siblings = {
      invalidate: jest.fn(async (cache: string, keys: string[]) => {
        sent.push({ cache, keys });
        for (const l of listeners) l(cache, keys);
      }),
      onInvalidate: (l: (cache: string, keys: string[]) => void) => listeners.push(l),
    };
    const registry = new client.Registry();
    const here = make({ ttlMs, siblings: { invalidate: siblings.invalidate, onInvalidate: () => undefined } });
    const there = make({ ttlMs, registry, siblings });
    const elsewhere = make({ name: 'other', ttlMs, siblings });
    return { here, there, elsewhere, sent, siblings, registry };
  }

  it('drops what this process changed in the other processes too, and only in caches of its name', async () => {
    const { here, there, elsewhere, sent, registry } = pair();
    for (const c of [here, there, elsewhere]) {
      await c.read('a', async () => 'a1');
      await c.read('b', async () => 'b1');
    }
    await here.invalidateEverywhere('a');
    expect(sent).toEqual([{ cache: 'test', keys: ['a'] }]);
    expect(await here.read('a', async () => 'a2')).toBe('a2');
    expect(await there.read('a', async () => 'a2')).toBe('a2');
    expect(await there.read('b', async () => 'b2')).toBe('b1');
    expect(await elsewhere.read('a', async () => 'a2')).toBe('a1');
    const drops = (await registry.getSingleMetric('gef_gateway_cache_sibling_drops_total')!.get()).values;
    expect(drops).toEqual([expect.objectContaining({ labels: { cache: 'test' }, value: 1 })]);
  });

  it('asks no other process when the cache is off', async () => {
    const { here, siblings } = pair(0);
    await here.invalidateEverywhere('a');
    expect(siblings.invalidate).not.toHaveBeenCalled();
  });
});
