import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidArgument, NotFound } from '@gef/common';
import { digestPattern, type ArtifactRef, type ArtifactStore, type StagedArtifact } from './artifact-store';

function checkDigest(digest: string): void {
  if (!digestPattern.test(digest)) throw new InvalidArgument('Invalid artifact digest', 'invalid_argument');
}

/**
 * Artifacts as files under `<root>/sha256/ab/cdef…`. Bytes are written to a temporary
 * file in `<root>/tmp` (same filesystem), flushed, then renamed into place: a reader
 * never sees a partial file and a failure leaves nothing behind.
 */
export class LocalArtifactStore implements ArtifactStore {
  private readonly tmpDir: string;

  /** `root` is `<GEF_DATA_DIR>/artifacts`. */
  constructor(private readonly root: string) {
    this.tmpDir = path.join(root, 'tmp');
  }

  /** Where a digest's bytes live. */
  pathOf(digest: string): string {
    checkDigest(digest);
    return path.join(this.root, 'sha256', digest.slice(0, 2), digest.slice(2));
  }

  async stage(source: AsyncIterable<Uint8Array> | NodeJS.ReadableStream): Promise<StagedArtifact> {
    await fsp.mkdir(this.tmpDir, { recursive: true });
    const tmp = path.join(this.tmpDir, `${Date.now()}-${randomBytes(8).toString('hex')}.part`);
    const hash = createHash('sha256');
    let size = 0;
    const hasher = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
    });
    const file = fs.createWriteStream(tmp, { flags: 'wx', mode: 0o640, flush: true });
    try {
      await pipeline(source, hasher, file);
    } catch (err) {
      // The file may still be opening when the pipeline fails: removed once it is closed.
      if (!file.closed) await new Promise<void>((resolve) => file.once('close', () => resolve()));
      await fsp.rm(tmp, { force: true });
      throw err;
    }
    const digest = hash.digest('hex');
    let settled = false;
    return {
      digest,
      size,
      commit: async () => {
        if (settled) return;
        const target = this.pathOf(digest);
        await fsp.mkdir(path.dirname(target), { recursive: true });
        // Same bytes under the same name: replacing an existing copy is harmless and atomic.
        await fsp.rename(tmp, target);
        settled = true;
      },
      discard: async () => {
        if (settled) return;
        settled = true;
        await fsp.rm(tmp, { force: true });
      },
    };
  }

  async put(source: AsyncIterable<Uint8Array> | NodeJS.ReadableStream): Promise<ArtifactRef> {
    const staged = await this.stage(source);
    try {
      await staged.commit();
    } catch (err) {
      await staged.discard();
      throw err;
    }
    return { digest: staged.digest, size: staged.size };
  }

  async get(digest: string): Promise<Readable> {
    const file = this.pathOf(digest);
    try {
      const handle = await fsp.open(file, 'r');
      return handle.createReadStream({ autoClose: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFound('Archive not found', 'not_found');
      throw err;
    }
  }

  async has(digest: string): Promise<boolean> {
    try {
      await fsp.access(this.pathOf(digest));
      return true;
    } catch {
      return false;
    }
  }

  async delete(digest: string): Promise<boolean> {
    try {
      await fsp.unlink(this.pathOf(digest));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /** Removes temporary files older than `maxAgeMs` (left by a crash mid-upload). */
  async sweepTemporary(maxAgeMs = 60 * 60 * 1000): Promise<number> {
    let removed = 0;
    let names: string[];
    try {
      names = await fsp.readdir(this.tmpDir);
    } catch {
      return 0;
    }
    for (const name of names) {
      const file = path.join(this.tmpDir, name);
      const stat = await fsp.stat(file).catch(() => undefined);
      if (stat && Date.now() - stat.mtimeMs > maxAgeMs) {
        await fsp.rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }
}
