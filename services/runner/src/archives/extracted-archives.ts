import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { isAlive } from '../process/is-alive';
import type { Sandbox, SandboxLimits } from '../sandbox/sandbox';

const digestPattern = /^[0-9a-f]{64}$/;

/**
 * Script archives extracted once per digest on this runner, for runs to copy into their
 * directories (SandboxRun.populate) instead of running tar each time. An archive is
 * extracted as a sandbox user of its own, with limits, in a run directory (as a run's own
 * extraction would be); then the tree is checked to hold only what that user made (a hard
 * link to a file outside would be refused), given to the runner's user and moved into a
 * directory only the runner can reach. Trees are immutable: a digest names its content.
 */
export class ExtractedArchives {
  private readonly ready = new Map<string, string>();
  private readonly inFlight = new Map<string, Promise<string>>();

  constructor(
    private readonly dir: string,
    private readonly sandbox: Sandbox,
  ) {}

  /** The extracted tree of an archive (extracted now when missing). */
  async get(archive: string, digest: string, limits: SandboxLimits): Promise<string> {
    if (!digestPattern.test(digest)) throw new Error(`invalid archive digest '${digest.slice(0, 80)}'`);
    const known = this.ready.get(digest);
    if (known) return known;
    const tree = path.join(this.dir, digest);
    if (await fs.stat(tree).then((s) => s.isDirectory(), () => false)) {
      this.ready.set(digest, tree);
      return tree;
    }
    let running = this.inFlight.get(digest);
    if (!running) {
      running = this.extract(archive, tree, limits).finally(() => this.inFlight.delete(digest));
      this.inFlight.set(digest, running);
    }
    const extracted = await running;
    this.ready.set(digest, extracted);
    return extracted;
  }

  /** Removes trees half made by runner processes that are gone. */
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

  private async extract(archive: string, tree: string, limits: SandboxLimits): Promise<string> {
    const run = await this.sandbox.open('extract');
    const tmp = path.join(this.dir, `.tmp-${path.basename(tree).slice(0, 12)}-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await run.extract(archive, limits);
      // Nothing of its user runs any more before the tree changes hands.
      await run.killAll();
      await fs.rename(run.dir, tmp);
      if (run.uid !== undefined) await this.takeOver(tmp, run.uid);
      try {
        await fs.rename(tmp, tree);
      } catch (err) {
        // Another runner process on this machine finished the same digest first.
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
        await fs.rm(tmp, { recursive: true, force: true });
      }
      return tree;
    } catch (err) {
      await fs.rm(tmp, { recursive: true, force: true });
      throw err;
    } finally {
      await run.close();
    }
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
