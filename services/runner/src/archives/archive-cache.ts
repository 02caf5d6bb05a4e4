import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ByteBudget, type CacheLease } from '../caches/byte-budget';
import { isAlive } from '../process/is-alive';

/** Where an archive comes from: the script service's DownloadScript, as a stream of chunks. */
export type ArchiveSource = (ref: ArchiveRef) => AsyncIterable<Uint8Array>;

export interface ArchiveRef {
  scriptId: string;
  version: number;
  /** SHA-256, lower-case hex. */
  digest: string;
  size: number;
  /** The script's owner: the download is made as them. */
  scriptUserId: string;
}

/** A file or tree of a cache, and the reference a run holds while it uses it. */
export interface CachedPath extends CacheLease {
  path: string;
}

export interface ArchiveCacheOptions {
  /** Bytes the archives may take together (RUNNER_ARCHIVES_MAX_BYTES); default: no bound. */
  maxBytes?: number;
  /** Told when an archive could not be removed. */
  onError?: (file: string, err: unknown) => void;
}

const digestPattern = /^[0-9a-f]{64}$/;
const archivePattern = /^([0-9a-f]{64})\.tar\.gz$/;
/** A download in progress: `<digest>.tar.gz.<pid>.<random>.part`. */
const partPattern = /^[0-9a-f]{64}\.tar\.gz\.(\d+)\.[0-9a-f]+\.part$/;

/**
 * Script archives on this runner, by digest: downloaded once (checked against the digest
 * and size), then reused by every run of that version until they are extracted again. The
 * directory is the runner's alone. At most `maxBytes` together: the least recently used go
 * first, never one a run of this process is reading (its reference is held until the
 * archive is extracted), and one removed is downloaded again when a run needs it.
 */
export class ArchiveCache {
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly budget: ByteBudget;

  constructor(
    private readonly dir: string,
    private readonly source: ArchiveSource,
    options: ArchiveCacheOptions = {},
  ) {
    this.budget = new ByteBudget({
      maxBytes: options.maxBytes ?? Infinity,
      remove: async (digest) => {
        await fs.rm(this.fileOf(digest), { force: true });
        return true;
      },
      ...(options.onError ? { onError: (digest: string, err: unknown) => options.onError!(this.fileOf(digest), err) } : {}),
    });
  }

  /** Bytes the archives known to this process take. */
  get bytes(): number {
    return this.budget.bytes;
  }

  /** Resolves once no removal is due or under way. */
  idle(): Promise<void> {
    return this.budget.idle();
  }

  /**
   * Once at start: the archives an earlier process left are counted (oldest first, by their
   * time of download), partial downloads of processes that are gone removed, and the budget
   * kept.
   */
  async recover(): Promise<{ archives: number; partial: number }> {
    const found: { digest: string; size: number; mtimeMs: number }[] = [];
    let partial = 0;
    for (const name of await fs.readdir(this.dir).catch(() => [] as string[])) {
      const file = path.join(this.dir, name);
      const owner = Number(partPattern.exec(name)?.[1]);
      if (Number.isInteger(owner)) {
        if (owner !== process.pid && isAlive(owner)) continue;
        await fs.rm(file, { force: true });
        partial++;
        continue;
      }
      const digest = archivePattern.exec(name)?.[1];
      const stat = digest ? await fs.stat(file).catch(() => undefined) : undefined;
      if (digest && stat?.isFile()) found.push({ digest, size: stat.size, mtimeMs: stat.mtimeMs });
    }
    for (const { digest, size } of found.sort((x, y) => x.mtimeMs - y.mtimeMs)) this.budget.recover(digest, size);
    await this.budget.evict();
    return { archives: found.length, partial };
  }

  /**
   * The archive's local path (downloaded when missing), with a reference: release it once
   * the archive was read.
   */
  async acquire(ref: ArchiveRef): Promise<CachedPath> {
    const digest = ref.digest.trim().toLowerCase();
    if (!digestPattern.test(digest)) throw new Error(`invalid archive digest '${ref.digest.slice(0, 80)}'`);
    const file = this.fileOf(digest);
    // A few rounds at most: each ends with the archive in place, unless it is removed again at once.
    for (let round = 0; round < 3; round++) {
      const lease = await this.budget.acquire(digest);
      if (lease) {
        if (await isFile(file)) return { path: file, release: lease.release };
        // Removed by another process sharing the directory.
        lease.release();
        this.budget.forget(digest);
      }
      const stat = await fs.stat(file).catch(() => undefined);
      // Downloaded by another process sharing the directory: counted from now on.
      if (stat?.isFile()) return { path: file, release: this.budget.add(digest, stat.size).release };
      let running = this.inFlight.get(digest);
      if (!running) {
        running = this.download({ ...ref, digest }, file).finally(() => this.inFlight.delete(digest));
        this.inFlight.set(digest, running);
      }
      await running;
    }
    throw new Error(`the archive ${digest.slice(0, 12)}… was removed as soon as it was downloaded`);
  }

  private fileOf(digest: string): string {
    return path.join(this.dir, `${digest}.tar.gz`);
  }

  private async download(ref: ArchiveRef, file: string): Promise<void> {
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.part`;
    const hash = createHash('sha256');
    let size = 0;
    const handle = await fs.open(tmp, 'wx', 0o600);
    try {
      for await (const chunk of this.source(ref)) {
        hash.update(chunk);
        size += chunk.length;
        await handle.write(chunk);
      }
      await handle.close();
      const got = hash.digest('hex');
      if (got !== ref.digest) throw new Error(`the downloaded archive does not match its digest (${got.slice(0, 12)}… ≠ ${ref.digest.slice(0, 12)}…)`);
      if (ref.size > 0 && size !== ref.size) throw new Error(`the downloaded archive has ${size} bytes, not ${ref.size}`);
      await fs.rename(tmp, file);
      // Counted now; whoever waits for it takes its reference before any removal.
      this.budget.add(ref.digest, size).release();
    } catch (err) {
      await handle.close().catch(() => undefined);
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }
}

async function isFile(file: string): Promise<boolean> {
  return fs.stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
}
