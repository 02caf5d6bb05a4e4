/** A reference to a cache entry, taken while a run uses it. */
export interface CacheLease {
  /** Gives the reference back (once; later calls do nothing). */
  release(): void;
}

export interface ByteBudgetOptions {
  /** Bytes the entries may take together (entries in use may take more for a while). */
  maxBytes: number;
  /**
   * Removes an entry's files. False when it cannot be removed now (used by another process,
   * say): it is kept. A throw counts as false.
   */
  remove: (key: string) => Promise<boolean>;
  /** Told when a removal failed. */
  onError?: (key: string, err: unknown) => void;
}

interface Entry {
  bytes: number;
  refs: number;
  removing: boolean;
}

/**
 * What a cache of this runner holds, by key, with each entry's size: at most `maxBytes`
 * together, the least recently used entries removed first. An entry with a reference taken
 * (a run using it) is never removed, nor the most recently used one: an entry bigger than
 * the whole budget stays alone until another is used. Sizes are given when entries are added,
 * never measured here.
 */
export class ByteBudget {
  /** Least recently used first. */
  private readonly entries = new Map<string, Entry>();
  private total = 0;
  private readonly removals = new Map<string, Promise<void>>();
  private running: Promise<void> | undefined;
  private again = false;
  private scheduled: NodeJS.Immediate | undefined;

  constructor(private readonly options: ByteBudgetOptions) {}

  /** Bytes of the entries together. */
  get bytes(): number {
    return this.total;
  }

  /** The entries, least recently used first. */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** References taken to an entry (0 when unknown). */
  refs(key: string): number {
    return this.entries.get(key)?.refs ?? 0;
  }

  /**
   * A reference to a known entry, now the most recently used: after its removal under way,
   * if any, has ended (undefined when it was removed, or never known).
   */
  async acquire(key: string): Promise<CacheLease | undefined> {
    for (;;) {
      const removal = this.removals.get(key);
      if (!removal) break;
      await removal;
    }
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    return this.lease(key, entry);
  }

  /**
   * Records an entry whose files are in place, as the most recently used, and a reference
   * to it. Known already: its size is replaced.
   */
  add(key: string, bytes: number): CacheLease {
    const known = this.entries.get(key);
    if (known) {
      this.total += bytes - known.bytes;
      known.bytes = bytes;
      return this.lease(key, known);
    }
    const entry: Entry = { bytes, refs: 0, removing: false };
    this.entries.set(key, entry);
    this.total += bytes;
    return this.lease(key, entry);
  }

  /** Records an entry found on disk (an earlier process's), as the least recently used so far. */
  recover(key: string, bytes: number): void {
    if (this.entries.has(key)) return;
    this.entries.set(key, { bytes, refs: 0, removing: false });
    this.total += bytes;
    this.schedule();
  }

  /** Forgets an entry whose files went away otherwise (its references give nothing back). */
  forget(key: string): void {
    const entry = this.entries.get(key);
    if (!entry || entry.removing) return;
    this.entries.delete(key);
    this.total -= entry.bytes;
  }

  /** Resolves once no removal is due or under way. */
  async idle(): Promise<void> {
    for (;;) {
      if (this.scheduled) await new Promise((resolve) => setImmediate(resolve));
      else if (this.running) await this.running;
      else return;
    }
  }

  /** Removes least recently used entries until the rest fit; resolves when done. */
  evict(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass();
      } while (this.again);
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  private lease(key: string, entry: Entry): CacheLease {
    entry.refs++;
    // The most recently used: last.
    if (this.entries.get(key) === entry) {
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
    let released = false;
    this.schedule();
    return {
      release: () => {
        if (released) return;
        released = true;
        entry.refs--;
        if (entry.refs === 0) this.schedule();
      },
    };
  }

  /**
   * Eviction after the current turn: whoever waits for an entry just added takes its
   * reference first.
   */
  private schedule(): void {
    if (this.scheduled || this.total <= this.options.maxBytes) return;
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined;
      void this.evict();
    });
    this.scheduled.unref();
  }

  private async pass(): Promise<void> {
    const refused = new Set<string>();
    while (this.total > this.options.maxBytes) {
      const newest = [...this.entries.keys()].at(-1);
      let victim: [string, Entry] | undefined;
      for (const candidate of this.entries) {
        const [key, entry] = candidate;
        if (entry.refs === 0 && !entry.removing && key !== newest && !refused.has(key)) {
          victim = candidate;
          break;
        }
      }
      if (!victim) return;
      const [key, entry] = victim;
      entry.removing = true;
      const removal = this.options.remove(key).catch((err: unknown) => {
        this.options.onError?.(key, err);
        return false;
      });
      this.removals.set(
        key,
        removal.then(() => undefined),
      );
      const removed = await removal;
      entry.removing = false;
      if (removed && this.entries.get(key) === entry) {
        this.entries.delete(key);
        this.total -= entry.bytes;
      } else if (!removed) refused.add(key);
      this.removals.delete(key);
    }
  }
}
