import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { InvalidArgument } from '@gef/common';
import { receiveArchive } from '../src/archive/receive-archive';
import { defaultArchiveLimits } from '../src/archive/limits';
import { LocalArtifactStore } from '../src/artifacts/local-artifact-store';
import { chunks, cliLayout, gzip, tar } from './support/tar-writer';

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile());
}

describe('receiveArchive', () => {
  let root: string;
  let store: LocalArtifactStore;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-receive-'));
    store = new LocalArtifactStore(root);
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('stages the exact bytes and reports the configuration', async () => {
    const bytes = gzip(tar([...cliLayout({ name: 'Upload Me' }), { name: 'noise.bin', data: randomBytes(300_000) }]));
    const { staged, contents } = await receiveArchive(chunks(bytes, 16 * 1024), store, defaultArchiveLimits);
    expect(staged.digest).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(staged.size).toBe(bytes.length);
    expect(contents.configuration.slug).toBe('upload-me');
    await staged.commit();
    expect(fs.readFileSync(store.pathOf(staged.digest)).equals(bytes)).toBe(true);
  });

  it('refuses a hostile archive and leaves no file behind', async () => {
    const bytes = gzip(tar([...cliLayout(), { name: '../evil', data: 'x' }, { name: 'big.bin', data: randomBytes(500_000) }]));
    await expect(receiveArchive(chunks(bytes, 1024), store, defaultArchiveLimits)).rejects.toThrow(/member path with '\.\.'/);
    expect(filesUnder(root)).toEqual([]);
  });

  it('stops reading at the upload limit and leaves no file behind', async () => {
    let produced = 0;
    async function* endless() {
      const head = gzip(tar(cliLayout()));
      yield head;
      for (;;) {
        produced += 65536;
        yield randomBytes(65536);
      }
    }
    const err = await receiveArchive(endless(), store, { ...defaultArchiveLimits, maxCompressedBytes: 1024 * 1024 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgument);
    expect(produced).toBeLessThan(2 * 1024 * 1024);
    expect(filesUnder(root)).toEqual([]);
  });

  it('passes on a broken upload stream and leaves no file behind', async () => {
    async function* broken() {
      yield gzip(tar(cliLayout())).subarray(0, 50);
      throw new Error('connection reset');
    }
    await expect(receiveArchive(broken(), store, defaultArchiveLimits)).rejects.toThrow('connection reset');
    expect(filesUnder(root)).toEqual([]);
  });
});
