import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { InvalidArgument } from '@gef/common';
import { receiveArchive } from '../src/archive/receive-archive';
import { defaultArchiveLimits } from '../src/archive/limits';
import type { ArtifactStore } from '../src/artifacts/artifact-store';
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

  const parts = async function* (...list: Buffer[]) {
    yield* list;
  };

  it('stages an archive with zero padding after the gzip data as uploaded, the padding in later chunks', async () => {
    const gz = gzip(tar(cliLayout({ name: 'Padded Upload' })));
    const bytes = Buffer.concat([gz, Buffer.alloc(16 * 1024)]);
    const { staged, contents } = await receiveArchive(parts(gz, Buffer.alloc(8192), Buffer.alloc(8192)), store, defaultArchiveLimits);
    expect(contents.configuration.slug).toBe('padded-upload');
    expect(staged.digest).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(staged.size).toBe(bytes.length);
    await staged.discard();
  });

  it('refuses other data after the gzip data with InvalidArgument and leaves no file behind', async () => {
    const gz = gzip(tar(cliLayout()));
    for (const upload of [parts(gz, Buffer.alloc(8192), Buffer.from('hello')), parts(gz, Buffer.from('hello'))]) {
      const err = await receiveArchive(upload, store, defaultArchiveLimits).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgument);
      expect((err as InvalidArgument).reason).toBe('invalid_archive');
      expect((err as Error).message).toMatch(/data after the end of the gzip stream/);
    }
    expect(filesUnder(root)).toEqual([]);
  });

  it("answers the checks' refusal when the pump then failed too (here at the upload limit)", async () => {
    // A store that takes every chunk at once: the pump reads on past the refused start.
    const eager = {
      async stage(source: AsyncIterable<Uint8Array>) {
        for await (const _chunk of source);
        return { digest: '', size: 0, commit: async () => undefined, discard: async () => undefined };
      },
    } as unknown as ArtifactStore;
    const upload = parts(Buffer.from('hello'), randomBytes(2048));
    const err = await receiveArchive(upload, eager, { ...defaultArchiveLimits, maxCompressedBytes: 1024 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgument);
    expect((err as Error).message).toMatch(/not gzip-compressed/);
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
