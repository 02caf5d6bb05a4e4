import { randomBytes } from 'node:crypto';
import { accessSync, mkdirSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ByteBudget, type CacheLease } from '../caches/byte-budget';
import { treeBytes } from '../caches/tree-bytes';
import { removeTree } from '../sandbox/sandbox';

/** The runner's record of a complete environment (in its directory, the runner's alone). */
export const environmentRecord = '.gef-environment.json';

const hashPattern = /^[0-9a-f]{64}$/;

/** Whether an environment's directory is complete (its record and interpreter are there). */
export async function isEnvironmentReady(dir: string): Promise<boolean> {
  try {
    await Promise.all([fs.access(path.join(dir, environmentRecord)), fs.access(path.join(dir, 'bin', 'python'))]);
    return true;
  } catch {
    return false;
  }
}

function isReadySync(dir: string): boolean {
  try {
    accessSync(path.join(dir, environmentRecord));
    accessSync(path.join(dir, 'bin', 'python'));
    return true;
  } catch {
    return false;
  }
}

export interface EnvironmentCacheOptions {
  /** Bytes the environments may take together (RUNNER_ENVIRONMENTS_MAX_BYTES). */
  maxBytes: number;
  /** Told when an environment could not be removed or measured. */
  onError?: (dir: string, err: unknown) => void;
  /** Told when an environment was removed. */
  onRemoved?: (dir: string) => void;
  /** How often the marks of environments in use are renewed (default a minute). */
  renewMs?: number;
  /** A mark not renewed for this long is a dead process's (default five minutes). */
  staleMs?: number;
}

/**
 * The environments of a runner directory, `environments/<hash>`, kept within a byte budget:
 * the least recently used are removed first, and one removed is built again when a run or a
 * build needs it. An environment is in use for the whole run of a script (its interpreter,
 * its packages), so it is never removed while one is using it — of this process (a reference)
 * or of another runner process sharing the directory: each use leaves a mark in
 * `environments/.uses/<hash>/` (renewed every minute while it lasts, so a dead process's
 * marks go stale), made and checked under a lock of the hash (`.uses/<hash>.lock`, an
 * atomic mkdir) together with the environment's completeness, and a removal under the same
 * lock refuses while a fresh mark is there. Sizes are measured once, when an environment is
 * built, and kept in its record; at start those of an earlier process's are read from their
 * records (measured once, and recorded, for those built before).
 */
export class EnvironmentCache {
  private readonly budget: ByteBudget;
  private readonly uses: string;
  private readonly marks = new Set<string>();
  private renewal: NodeJS.Timeout | undefined;
  private readonly renewMs: number;
  private readonly staleMs: number;

  constructor(
    /** `<runner dir>/environments`. */
    readonly root: string,
    private readonly options: EnvironmentCacheOptions,
  ) {
    this.uses = path.join(root, '.uses');
    this.renewMs = options.renewMs ?? 60_000;
    this.staleMs = options.staleMs ?? 5 * 60_000;
    this.budget = new ByteBudget({
      maxBytes: options.maxBytes,
      remove: (hash) => this.remove(hash),
      onError: (hash, err) => options.onError?.(this.dirOf(hash), err),
    });
  }

  /** Bytes the environments known to this process take. */
  get bytes(): number {
    return this.budget.bytes;
  }

  /** Resolves once no removal is due or under way. */
  idle(): Promise<void> {
    return this.budget.idle();
  }

  dirOf(hash: string): string {
    return path.join(this.root, hash);
  }

  /**
   * A use of a complete environment, marked until it is released (once its script's
   * processes are gone); undefined when it is not there (never built, or removed).
   */
  async use(hash: string): Promise<CacheLease | undefined> {
    const dir = this.dirOf(hash);
    // Not removed by this process while it is checked and marked.
    const held = await this.budget.acquire(hash);
    // A few local file operations, made synchronously (a trip through the thread pool each
    // would cost more than they do).
    const mark = await this.locked(hash, () => {
      if (!isReadySync(dir)) return undefined;
      const file = path.join(this.uses, hash, `${process.pid}-${randomBytes(6).toString('hex')}`);
      try {
        writeFileSync(file, '', { mode: 0o600, flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
        writeFileSync(file, '', { mode: 0o600, flag: 'wx' });
      }
      return file;
    }).catch((err: unknown) => {
      held?.release();
      throw err;
    });
    if (!mark) {
      // Removed by another process sharing the directory.
      held?.release();
      if (held) this.budget.forget(hash);
      return undefined;
    }
    let lease = held;
    if (!lease) {
      // Built or left by another process: counted from now on.
      const bytes = await this.sizeOf(dir).catch((err: unknown) => {
        this.options.onError?.(dir, err);
        return 0;
      });
      lease = this.budget.add(hash, bytes);
    }
    this.marks.add(mark);
    this.renewMarks();
    let released = false;
    const taken = lease;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.marks.delete(mark);
        rmSync(mark, { force: true });
        taken.release();
      },
    };
  }

  /** An environment just built (its size measured before it was renamed into place). */
  added(hash: string, bytes: number): void {
    this.budget.add(hash, bytes).release();
  }

  /**
   * Once at start: the complete environments in the directory are counted (oldest first, by
   * their record's time), from their records' sizes, and the budget kept.
   */
  async recover(): Promise<{ environments: number; measured: number }> {
    const found: { hash: string; bytes: number; mtimeMs: number }[] = [];
    let measured = 0;
    for (const name of await fs.readdir(this.root).catch(() => [] as string[])) {
      if (!hashPattern.test(name)) continue;
      const dir = this.dirOf(name);
      const stat = await fs.stat(path.join(dir, environmentRecord)).catch(() => undefined);
      if (!stat || !(await isEnvironmentReady(dir))) continue;
      const recorded = await recordedBytes(dir);
      let bytes = recorded;
      if (bytes === undefined) {
        bytes = await this.sizeOf(dir).catch(() => 0);
        measured++;
      }
      found.push({ hash: name, bytes, mtimeMs: stat.mtimeMs });
    }
    for (const { hash, bytes } of found.sort((x, y) => x.mtimeMs - y.mtimeMs)) this.budget.recover(hash, bytes);
    await this.budget.evict();
    return { environments: found.length, measured };
  }

  /** An environment's size: its record's, else measured (and recorded for the next time). */
  private async sizeOf(dir: string): Promise<number> {
    const recorded = await recordedBytes(dir);
    if (recorded !== undefined) return recorded;
    const bytes = await treeBytes(dir);
    await recordBytes(dir, bytes).catch((err: unknown) => this.options.onError?.(dir, err));
    return bytes;
  }

  /**
   * Removes an environment no run of this process uses, unless a fresh mark says another
   * process's run does: moved aside in one step under the hash's lock (a run that comes
   * for it meanwhile builds it again), then deleted.
   */
  private async remove(hash: string): Promise<boolean> {
    const dir = this.dirOf(hash);
    const aside = await this.locked(hash, async () => {
      const marks = path.join(this.uses, hash);
      for (const name of await fs.readdir(marks).catch(() => [] as string[])) {
        const stat = await fs.stat(path.join(marks, name)).catch(() => undefined);
        if (stat && Date.now() - stat.mtimeMs < this.staleMs) return undefined;
      }
      const target = path.join(this.root, `.tmp-${hash.slice(0, 12)}-${process.pid}-${randomBytes(4).toString('hex')}`);
      try {
        await fs.rename(dir, target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        return '';
      }
      await fs.rm(marks, { recursive: true, force: true });
      return target;
    });
    if (aside === undefined) return false;
    this.options.onRemoved?.(dir);
    // Gone from its place either way; what could not be deleted is swept at the next start.
    if (aside) await removeTree(aside).catch((err: unknown) => this.options.onError?.(aside, err));
    return true;
  }

  /** Renews this process's marks while it has any (a dead process's go stale). */
  private renewMarks(): void {
    if (this.renewal) return;
    this.renewal = setInterval(() => {
      if (this.marks.size === 0) {
        clearInterval(this.renewal);
        this.renewal = undefined;
        return;
      }
      const now = new Date();
      for (const mark of this.marks) void fs.utimes(mark, now, now).catch(() => undefined);
    }, this.renewMs);
    this.renewal.unref();
  }

  /**
   * Runs `fn` holding the hash's lock across the runner processes sharing the directory: a
   * directory made atomically, held for a few file operations. One left by a process that
   * died holding it is taken over after ten seconds.
   */
  private async locked<T>(hash: string, fn: () => T | Promise<T>): Promise<T> {
    const lock = path.join(this.uses, `${hash}.lock`);
    for (let attempt = 0; !this.tryLock(lock); attempt++) {
      if (attempt > 6000) throw new Error(`the environment ${hash.slice(0, 12)}… stays locked`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    try {
      return await fn();
    } finally {
      try {
        rmdirSync(lock);
      } catch {
        // Taken over as stale meanwhile.
      }
    }
  }

  /** Takes the lock when it is free, or left by a process that died holding it. */
  private tryLock(lock: string): boolean {
    for (;;) {
      try {
        mkdirSync(lock);
        return true;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          // environments/ as the runner's directories have it: enterable, not listable.
          mkdirSync(this.root, { recursive: true, mode: 0o711 });
          try {
            mkdirSync(this.uses, { mode: 0o700 });
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
          }
          continue;
        }
        if (code !== 'EEXIST') throw err;
        let held: number;
        try {
          held = Date.now() - statSync(lock).mtimeMs;
        } catch {
          continue;
        }
        if (held <= 10_000) return false;
        try {
          rmdirSync(lock);
        } catch {
          // Another took it over first.
        }
      }
    }
  }
}

/** The size an environment's record gives, if it gives one. */
async function recordedBytes(dir: string): Promise<number | undefined> {
  try {
    // Read only as the runner's own regular file (never a link or a FIFO left at its name).
    const stat = await fs.lstat(path.join(dir, environmentRecord));
    if (!stat.isFile() || stat.uid !== (process.getuid?.() ?? stat.uid)) return undefined;
    const record = JSON.parse(await fs.readFile(path.join(dir, environmentRecord), 'utf8')) as { bytes?: unknown };
    return typeof record.bytes === 'number' && Number.isFinite(record.bytes) && record.bytes >= 0 ? record.bytes : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Adds the size to an environment's record: written anew beside it (O_EXCL) and renamed over
 * it, never through what is at its name. The directory is the runner's (claimed), complete
 * and immutable otherwise.
 */
async function recordBytes(dir: string, bytes: number): Promise<void> {
  const file = path.join(dir, environmentRecord);
  const stat = await fs.lstat(file);
  if (!stat.isFile() || stat.uid !== (process.getuid?.() ?? stat.uid)) return;
  const record = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await fs.writeFile(tmp, `${JSON.stringify({ ...record, bytes }, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}
