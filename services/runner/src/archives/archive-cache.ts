import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

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

const digestPattern = /^[0-9a-f]{64}$/;

/**
 * Script archives on this runner, by digest: downloaded once (checked against the digest
 * and size), then reused by every run of that version. The directory is the runner's alone.
 */
export class ArchiveCache {
  private readonly inFlight = new Map<string, Promise<string>>();

  constructor(
    private readonly dir: string,
    private readonly source: ArchiveSource,
  ) {}

  /** The archive's local path, downloaded when missing. */
  async get(ref: ArchiveRef): Promise<string> {
    const digest = ref.digest.trim().toLowerCase();
    if (!digestPattern.test(digest)) throw new Error(`invalid archive digest '${ref.digest.slice(0, 80)}'`);
    const file = path.join(this.dir, `${digest}.tar.gz`);
    if (await fs.stat(file).then((s) => s.isFile(), () => false)) return file;
    let running = this.inFlight.get(digest);
    if (!running) {
      running = this.download({ ...ref, digest }, file).finally(() => this.inFlight.delete(digest));
      this.inFlight.set(digest, running);
    }
    return running;
  }

  private async download(ref: ArchiveRef, file: string): Promise<string> {
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
      return file;
    } catch (err) {
      await handle.close().catch(() => undefined);
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }
}
