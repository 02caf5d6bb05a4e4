import type client from 'prom-client';
import { sharedCounter } from '@gef/common';

/** How long a key's last invalidation is remembered: longer than any load takes (RPC deadlines are shorter). */
const invalidationMemoryMs = 120_000;

/**
 * What an entry weighs beyond its value and its variant's length: its bookkeeping. An empty
 * value is not free: without it, entries weighing 0 were never bounded by `maxWeight`.
 */
export const entryOverhead = 64;

export interface ReadCacheOptions<V> {
  /** Name in metrics (`gef_gateway_cache_lookups_total{cache}`). */
  name: string;
  /**
   * Most entries kept, counting every variant of every key (one key's variants are not free);
   * the least recently used keys go first.
   */
  maxEntries: number;
  /**
   * The most total weight kept (e.g. characters), the least recently used keys going first;
   * an entry heavier than this alone is never stored. An entry weighs `weigh(value)` plus its
   * variant's length plus `entryOverhead`: the variant is held too, and so is the entry.
   */
  maxWeight?: number;
  /** The weight of a value (0 without it), for `maxWeight`. */
  weigh?: (value: V) => number;
  /** How long an entry may serve; 0 turns the cache off. */
  ttlMs: number;
  /**
   * Whether invalidations are arriving right now. While false the cache is bypassed and
   * nothing is stored: a change could be missed.
   */
  live: () => boolean;
  registry?: client.Registry;
  /** The clock, in milliseconds (`Date.now` without it): tests move it. */
  now?: () => number;
  /**
   * The other processes of this gateway (its cluster's workers), holding caches of the
   * same names: `invalidateEverywhere` drops keys in them too.
   */
  siblings?: CacheSiblings;
}

/** The other processes of one gateway, each with caches of the same names. */
export interface CacheSiblings {
  /** Has every other process drop `keys` of the cache `cache`; resolves once each did, or could not in time. */
  invalidate(cache: string, keys: string[]): Promise<void>;
  /** Calls `listener` with the keys another process asks this one to drop. */
  onInvalidate(listener: (cache: string, keys: string[]) => void): void;
}

/** One variant of a key, as stored. */
interface Entry<V> {
  key: string;
  variant: string;
  value: V;
  storedAt: number;
  weight: number;
}

/**
 * A read-through cache of answers the gateway would otherwise fetch from a service on
 * every request, dropped by key when the owning service announces a change.
 *
 * A load that began before an invalidation of its key is never stored, so a change
 * racing with a read cannot leave a stale copy behind: every load takes a ticket (the
 * invalidation count when it began), and `store` refuses tickets older than the key's
 * last invalidation, or than the last `clear`.
 */
export class ReadCache<V> {
  /** By key, least recently used first; each key holds its variants (e.g. per caller), oldest first. */
  private readonly entries = new Map<string, Map<string, Entry<V>>>();
  /**
   * Every entry held, oldest first: as all live equally long, the first to expire first.
   * Expiry walks it, not the keys, so a key that keeps being used cannot shield its own
   * expired variants, nor other keys hide them behind a live one.
   */
  private readonly byAge = new Set<Entry<V>>();
  /** The weight of every entry held. */
  private weight = 0;
  private generation = 0;
  /** The generation of each key's last invalidation, and when it was; the oldest first. */
  private readonly invalidatedAt = new Map<string, { generation: number; at: number }>();
  /** Loads that began before this generation are never stored. */
  private floor = 0;
  private readonly lookups: client.Counter<'cache' | 'result'> | undefined;

  constructor(private readonly options: ReadCacheOptions<V>) {
    let siblingDrops: client.Counter<'cache'> | undefined;
    if (options.registry) {
      this.lookups = sharedCounter(options.registry, 'gef_gateway_cache_lookups_total', 'Read-cache lookups by cache and result (hit, miss, bypass)', ['cache', 'result'] as const);
      siblingDrops = sharedCounter(options.registry, 'gef_gateway_cache_sibling_drops_total', 'Keys dropped from a read cache because another process of this gateway changed them', ['cache'] as const);
    }
    options.siblings?.onInvalidate((cache, keys) => {
      if (cache !== options.name) return;
      for (const key of keys) this.invalidate(key);
      siblingDrops?.inc({ cache }, keys.length);
    });
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  private get enabled(): boolean {
    return this.options.ttlMs > 0 && this.options.live();
  }

  /**
   * The cached value of `key` (in its `variant`: answers that differ by caller are kept
   * apart, and all of a key's variants go together), else `load()`'s, stored unless the
   * key changed meanwhile.
   */
  async read(key: string, load: () => Promise<V>, variant = ''): Promise<V> {
    if (!this.enabled) {
      this.lookups?.inc({ cache: this.options.name, result: 'bypass' });
      return load();
    }
    const variants = this.entries.get(key);
    const hit = variants?.get(variant);
    if (variants && hit && this.now() - hit.storedAt < this.options.ttlMs) {
      // Most recently used last.
      this.entries.delete(key);
      this.entries.set(key, variants);
      this.lookups?.inc({ cache: this.options.name, result: 'hit' });
      return hit.value;
    }
    this.lookups?.inc({ cache: this.options.name, result: 'miss' });
    const ticket = this.generation;
    const value = await load();
    this.store(key, variant, value, ticket);
    return value;
  }

  /**
   * Whether `value` is still what `read(key, …, variant)` would answer from memory: held,
   * fresh, and the very copy (not one loaded since). For answers made from a value, which
   * stay good exactly as long as it does; counted as a hit when it is, unless `count` is false.
   */
  holds(key: string, variant: string, value: V, count = true): boolean {
    if (!this.enabled) return false;
    const variants = this.entries.get(key);
    const entry = variants?.get(variant);
    if (!variants || entry?.value !== value || this.now() - entry.storedAt >= this.options.ttlMs) return false;
    if (!count) return true;
    this.entries.delete(key);
    this.entries.set(key, variants);
    this.lookups?.inc({ cache: this.options.name, result: 'hit' });
    return true;
  }

  private store(key: string, variant: string, value: V, ticket: number): void {
    if (!this.enabled || ticket < this.floor || (this.invalidatedAt.get(key)?.generation ?? -1) > ticket) return;
    const weight = (this.options.weigh?.(value) ?? 0) + variant.length + entryOverhead;
    const maxWeight = this.options.maxWeight ?? Infinity;
    if (weight > maxWeight) return;
    const now = this.now();
    this.purgeExpired(now);
    const replaced = this.entries.get(key)?.get(variant);
    if (replaced) this.forget(replaced);
    const variants = this.entries.get(key) ?? new Map<string, Entry<V>>();
    // Most recently used last.
    this.entries.delete(key);
    this.entries.set(key, variants);
    const entry = { key, variant, value, storedAt: now, weight };
    variants.set(variant, entry);
    this.byAge.add(entry);
    this.weight += weight;
    while (this.byAge.size > this.options.maxEntries || this.weight > maxWeight) {
      const [lru, held] = this.entries.entries().next().value ?? [];
      if (lru === undefined || held === undefined) break;
      // Other keys go whole; the key just stored, once alone, loses its oldest variants
      // (the new one last), so that one key's variants are bounded too.
      if (lru === key) this.forget(held.values().next().value!);
      else this.drop(lru);
    }
  }

  /** Forgets one entry, and its key once it holds none. */
  private forget(entry: Entry<V>): void {
    const variants = this.entries.get(entry.key);
    variants?.delete(entry.variant);
    if (variants?.size === 0) this.entries.delete(entry.key);
    this.byAge.delete(entry);
    this.weight -= entry.weight;
  }

  /** Forgets a key's entries. */
  private drop(key: string): void {
    const variants = this.entries.get(key);
    if (!variants) return;
    for (const entry of variants.values()) {
      this.byAge.delete(entry);
      this.weight -= entry.weight;
    }
    this.entries.delete(key);
  }

  /**
   * Drops every entry that may not serve any more, oldest first. An expired entry otherwise
   * stayed until read again or pushed out by `maxEntries`: a key read once (an execution
   * that ended) never is, and the gateway grew with every such key. Walking keys instead
   * stopped at the first with a live entry: the expired variants of keys used since stayed.
   */
  private purgeExpired(now: number): void {
    for (const entry of this.byAge) {
      if (now - entry.storedAt < this.options.ttlMs) return;
      this.forget(entry);
    }
  }

  /** Drops one key (every variant), and keeps any load of it already under way from storing. */
  invalidate(key: string): void {
    this.generation++;
    this.drop(key);
    const now = this.now();
    // Last in the map, as the newest invalidation.
    this.invalidatedAt.delete(key);
    this.invalidatedAt.set(key, { generation: this.generation, at: now });
    // A key's history is needed only while a load begun before its invalidation may still
    // finish: older records go, and refusing every load begun before them keeps them safe.
    for (const [old, record] of this.invalidatedAt) {
      if (now - record.at < invalidationMemoryMs && this.invalidatedAt.size <= this.options.maxEntries) break;
      this.invalidatedAt.delete(old);
      this.floor = Math.max(this.floor, record.generation);
    }
  }

  /**
   * Drops keys here and in every other process of this gateway, and resolves once they
   * have too: for a change made through this gateway, so that its next answer shows the
   * change whichever of its processes gives it. (Other gateways learn of it from the
   * owning service's change stream.)
   */
  async invalidateEverywhere(...keys: string[]): Promise<void> {
    for (const key of keys) this.invalidate(key);
    if (this.options.ttlMs > 0) await this.options.siblings?.invalidate(this.options.name, keys);
  }

  /** Drops everything, and keeps every load under way from storing. */
  clear(): void {
    this.generation++;
    this.floor = this.generation;
    this.entries.clear();
    this.byAge.clear();
    this.weight = 0;
    this.invalidatedAt.clear();
  }

  /** How many keys' last invalidations are remembered. */
  get invalidationsKept(): number {
    return this.invalidatedAt.size;
  }

  /** How many keys are held. */
  get size(): number {
    return this.entries.size;
  }

  /** How many entries are held: every variant of every key. */
  get entriesHeld(): number {
    return this.byAge.size;
  }

  /** The total weight held (each entry's value, variant and `entryOverhead`). */
  get heldWeight(): number {
    return this.weight;
  }
}
