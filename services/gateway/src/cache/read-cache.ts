import type client from 'prom-client';
import { sharedCounter } from '@gef/common';

/** How long a key's last invalidation is remembered: longer than any load takes (RPC deadlines are shorter). */
const invalidationMemoryMs = 120_000;

export interface ReadCacheOptions<V> {
  /** Name in metrics (`gef_gateway_cache_lookups_total{cache}`). */
  name: string;
  /** Most keys kept; the least recently used go first. */
  maxEntries: number;
  /**
   * With `weigh`: the most total weight kept (e.g. characters), the least recently used keys
   * going first; a value heavier than this alone is never stored.
   */
  maxWeight?: number;
  /** The weight of a value, for `maxWeight`. */
  weigh?: (value: V) => number;
  /** How long an entry may serve; 0 turns the cache off. */
  ttlMs: number;
  /**
   * Whether invalidations are arriving right now. While false the cache is bypassed and
   * nothing is stored: a change could be missed.
   */
  live: () => boolean;
  registry?: client.Registry;
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
  /** By key, least recently used first; each key holds its variants (e.g. per caller). */
  private readonly entries = new Map<string, Map<string, { value: V; storedAt: number; weight: number }>>();
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
    if (variants && hit && Date.now() - hit.storedAt < this.options.ttlMs) {
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

  private store(key: string, variant: string, value: V, ticket: number): void {
    if (!this.enabled || ticket < this.floor || (this.invalidatedAt.get(key)?.generation ?? -1) > ticket) return;
    const weight = this.options.weigh?.(value) ?? 0;
    const maxWeight = this.options.maxWeight ?? Infinity;
    if (weight > maxWeight) return;
    const now = Date.now();
    this.purgeExpired(now);
    const variants = this.entries.get(key) ?? new Map<string, { value: V; storedAt: number; weight: number }>();
    this.entries.delete(key);
    this.weight += weight - (variants.get(variant)?.weight ?? 0);
    variants.set(variant, { value, storedAt: now, weight });
    this.entries.set(key, variants);
    while (this.entries.size > this.options.maxEntries || this.weight > maxWeight) this.drop(this.entries.keys().next().value!);
  }

  /** Forgets a key's entries. */
  private drop(key: string): void {
    const variants = this.entries.get(key);
    if (!variants) return;
    for (const entry of variants.values()) this.weight -= entry.weight;
    this.entries.delete(key);
  }

  /**
   * Drops the least recently used keys none of whose answers may serve any more. An expired
   * entry otherwise stayed until read again or pushed out by `maxEntries`: a key read once
   * (an execution that ended) never is, and the gateway grew with every such key.
   */
  private purgeExpired(now: number): void {
    for (const [key, variants] of this.entries) {
      for (const [variant, entry] of variants) {
        if (now - entry.storedAt < this.options.ttlMs) continue;
        variants.delete(variant);
        this.weight -= entry.weight;
      }
      if (variants.size > 0) return;
      this.entries.delete(key);
    }
  }

  /** Drops one key (every variant), and keeps any load of it already under way from storing. */
  invalidate(key: string): void {
    this.generation++;
    this.drop(key);
    const now = Date.now();
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

  /** The total weight held (0 without `weigh`). */
  get heldWeight(): number {
    return this.weight;
  }
}
