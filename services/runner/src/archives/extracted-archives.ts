import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ByteBudget } from '../caches/byte-budget';
import { treeBytes } from '../caches/tree-bytes';
import { isAlive } from '../process/is-alive';
import { removeTree, type Sandbox, type SandboxLimits } from '../sandbox/sandbox';
import type { CachedPath } from './archive-cache';

const digestPattern = /^[0-9a-f]{64}$/;

export interface ExtractedArchivesOptions {
  /** Bytes the trees may take together (RUNNER_EXTRACTED_MAX_BYTES); default: no bound. */
  maxBytes?: number;
  /** Told when a tree could not be removed. */
  onError?: (tree: string, err: unknown) => void;
}

/**
 * Script archives extracted once per digest on this runner, for runs to copy into their
 * directories (SandboxRun.populate) instead of running tar each time. An archive is
 * extracted as a sandbox user of its own, with limits, in a run directory (as a run's own
 * extraction would be); then the tree is checked to hold only what that user made (a hard
 * link to a file outside would be refused), given to the runner's user and moved into a
 * directory only the runner can reach. Trees are immutable: a digest names its content.
 *
 * At most `maxBytes` together (each tree measured once, when it is extracted, or at start for
 * those an earlier process left): the least recently used go first, never one a run of this
 * process is copying (it holds a reference from `acquire` until its copy is made), and one
 * removed is extracted again (its archive downloaded again if need be) when a run needs it.
 */
export class ExtractedArchives {
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly budget: ByteBudget;

  constructor(
    private readonly dir: string,
    private readonly sandbox: Sandbox,
    private readonly options: ExtractedArchivesOptions = {},
  ) {
    this.budget = new ByteBudget({
      maxBytes: options.maxBytes ?? Infinity,
      remove: (digest) => this.remove(digest),
      onError: (digest, err) => options.onError?.(this.treeOf(digest), err),
    });
  }

  /** Bytes the trees known to this process take. */
  get bytes(): number {
    return this.budget.bytes;
  }

  /** Resolves once no removal is due or under way. */
  idle(): Promise<void> {
    return this.budget.idle();
  }

  /**
   * The extracted tree of an archive, with a reference: release it once the tree was copied.
   * Extracted now when missing, from the archive `archive` gives (released once extracted):
   * it is asked for only then.
   */
  async acquire(digest: string, limits: SandboxLimits, archive: () => Promise<CachedPath>): Promise<CachedPath> {
    if (!digestPattern.test(digest)) throw new Error(`invalid archive digest '${digest.slice(0, 80)}'`);
    const tree = this.treeOf(digest);
    // A few rounds at most: each ends with the tree in place, unless it is removed again at once.
    for (let round = 0; round < 3; round++) {
      const lease = await this.budget.acquire(digest);
      if (lease) {
        if (await isDirectory(tree)) return { path: tree, release: lease.release };
        // Removed by another process sharing the directory.
        lease.release();
        this.budget.forget(digest);
        this.sandbox.forgetManifest(tree);
      }
      let running = this.inFlight.get(digest);
      if (!running) {
        running = this.make(digest, tree, limits, archive).finally(() => this.inFlight.delete(digest));
        this.inFlight.set(digest, running);
      }
      await running;
    }
    throw new Error(`the extracted archive ${digest.slice(0, 12)}… was removed as soon as it was made`);
  }

  /**
   * Once at start: trees half made by runner processes that are gone are removed, the
   * complete ones counted (measured once, oldest first), and the budget kept.
   */
  async recover(): Promise<{ trees: number; removed: number }> {
    const removed = await this.sweep();
    const found: { digest: string; bytes: number; mtimeMs: number }[] = [];
    for (const name of await fs.readdir(this.dir).catch(() => [] as string[])) {
      if (!digestPattern.test(name)) continue;
      const stat = await fs.stat(this.treeOf(name)).catch(() => undefined);
      if (stat?.isDirectory()) found.push({ digest: name, bytes: await treeBytes(this.treeOf(name)), mtimeMs: stat.mtimeMs });
    }
    for (const { digest, bytes } of found.sort((x, y) => x.mtimeMs - y.mtimeMs)) this.budget.recover(digest, bytes);
    await this.budget.evict();
    return { trees: found.length, removed };
  }

  /** Removes trees half made (or half removed) by runner processes that are gone. */
  async sweep(): Promise<number> {
    let removed = 0;
    for (const name of await fs.readdir(this.dir).catch(() => [] as string[])) {
      const owner = Number(/^\.tmp-[0-9a-f]+-(\d+)-/.exec(name)?.[1]);
      if (!Number.isInteger(owner) || (owner !== process.pid && isAlive(owner))) continue;
      await fs.rm(path.join(this.dir, name), { recursive: true, force: true });
      removed++;
    }
    return removed;
  }

  private treeOf(digest: string): string {
    return path.join(this.dir, digest);
  }

  private tmpName(digest: string): string {
    return path.join(this.dir, `.tmp-${digest.slice(0, 12)}-${process.pid}-${randomBytes(4).toString('hex')}`);
  }

  /** The tree in place and counted: found (another process's, measured once) or extracted now. */
  private async make(digest: string, tree: string, limits: SandboxLimits, archive: () => Promise<CachedPath>): Promise<void> {
    if (await isDirectory(tree)) {
      this.budget.add(digest, await treeBytes(tree)).release();
      return;
    }
    const source = await archive();
    try {
      const bytes = await this.extract(source.path, tree, limits);
      // Counted now; whoever waits for it takes its reference before any removal.
      this.budget.add(digest, bytes).release();
    } finally {
      source.release();
    }
  }

  /** Extracts the archive into `tree`; its size on disk. */
  private async extract(archive: string, tree: string, limits: SandboxLimits): Promise<number> {
    const run = await this.sandbox.open('extract');
    const tmp = this.tmpName(path.basename(tree));
    try {
      await run.extract(archive, limits);
      // Nothing of its user runs any more before the tree changes hands.
      await run.killAll();
      await fs.rename(run.dir, tmp);
      if (run.uid !== undefined) await this.takeOver(tmp, run.uid);
      const bytes = await treeBytes(tmp);
      try {
        await fs.rename(tmp, tree);
      } catch (err) {
        // Another runner process on this machine finished the same digest first.
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
        await fs.rm(tmp, { recursive: true, force: true });
      }
      return bytes;
    } catch (err) {
      await fs.rm(tmp, { recursive: true, force: true });
      throw err;
    } finally {
      await run.close();
    }
  }

  /**
   * Removes a tree no run of this process holds: moved aside in one step (a run that comes
   * for it meanwhile extracts it again), then deleted.
   */
  private async remove(digest: string): Promise<boolean> {
    const tree = this.treeOf(digest);
    const aside = this.tmpName(digest);
    try {
      await fs.rename(tree, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
      throw err;
    } finally {
      this.sandbox.forgetManifest(tree);
    }
    // Gone from its place either way; what could not be deleted is swept at the next start.
    await removeTree(aside).catch((err: unknown) => this.options.onError?.(aside, err));
    return true;
  }

  /** Every entry must be the extracting user's; each becomes the runner's. */
  private async takeOver(dir: string, uid: number): Promise<void> {
    const self = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    const visit = async (entry: string): Promise<void> => {
      const stat = await fs.lstat(entry);
      if (stat.uid !== uid) throw new Error(`the archive could not be extracted: ${path.relative(dir, entry) || '.'} is not the archive's own file`);
      await fs.lchown(entry, self.uid, self.gid);
      if (stat.isDirectory()) for (const name of await fs.readdir(entry)) await visit(path.join(entry, name));
    };
    await visit(dir);
  }
}

async function isDirectory(dir: string): Promise<boolean> {
  return fs.stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
}
