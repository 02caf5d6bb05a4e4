import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { NotFound } from '@gef/common';
import { LocalArtifactStore } from '../src/artifacts/local-artifact-store';
import { chunks } from './support/tar-writer';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Every file under a directory, relative. */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
}

describe('LocalArtifactStore', () => {
  let root: string;
  let store: LocalArtifactStore;

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-artifacts-'));
    store = new LocalArtifactStore(root);
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('stores bytes under their SHA-256 and gives them back unchanged', async () => {
    const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 256));
    const ref = await store.put(chunks(data, 4096));
    expect(ref).toEqual({ digest: sha256(data), size: data.length });
    expect(filesUnder(root)).toEqual([path.join('sha256', ref.digest.slice(0, 2), ref.digest.slice(2))]);
    expect(await store.has(ref.digest)).toBe(true);
    expect((await readAll(await store.get(ref.digest))).equals(data)).toBe(true);
  });

  it('stores the same bytes once', async () => {
    const a = await store.put(Readable.from([Buffer.from('same')]));
    const b = await store.put(Readable.from([Buffer.from('same')]));
    expect(a).toEqual(b);
    expect(filesUnder(root)).toHaveLength(1);
  });

  it('keeps staged bytes invisible until committed, and discard leaves nothing', async () => {
    const staged = await store.stage(Readable.from([Buffer.from('staged')]));
    expect(await store.has(staged.digest)).toBe(false);
    await staged.discard();
    expect(filesUnder(root)).toEqual([]);
    const again = await store.stage(Readable.from([Buffer.from('staged')]));
    await again.commit();
    expect(await store.has(again.digest)).toBe(true);
  });

  it('leaves no file behind when the source fails midway', async () => {
    async function* failing() {
      yield Buffer.alloc(100_000, 1);
      throw new Error('client went away');
    }
    await expect(store.put(failing())).rejects.toThrow('client went away');
    expect(filesUnder(root)).toEqual([]);
  });

  it('deletes, and reports missing digests', async () => {
    const ref = await store.put(Readable.from([Buffer.from('bye')]));
    expect(await store.delete(ref.digest)).toBe(true);
    expect(await store.delete(ref.digest)).toBe(false);
    await expect(store.get(ref.digest)).rejects.toBeInstanceOf(NotFound);
  });

  it('refuses digests that are not SHA-256 hex (no path tricks)', async () => {
    await expect(store.get('../../etc/passwd')).rejects.toThrow('Invalid artifact digest');
    expect(() => store.pathOf('A'.repeat(64))).toThrow('Invalid artifact digest');
  });

  it('sweeps old temporary files', async () => {
    fs.mkdirSync(path.join(root, 'tmp'), { recursive: true });
    const old = path.join(root, 'tmp', 'old.part');
    fs.writeFileSync(old, 'x');
    const past = new Date(Date.now() - 2 * 60 * 60 * 1000);
    fs.utimesSync(old, past, past);
    fs.writeFileSync(path.join(root, 'tmp', 'new.part'), 'y');
    expect(await store.sweepTemporary()).toBe(1);
    expect(filesUnder(root)).toEqual([path.join('tmp', 'new.part')]);
  });
});
