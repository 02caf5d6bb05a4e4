import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ArchiveCache, type ArchiveRef } from '../src/archives/archive-cache';

/** An archive's bytes and the reference a run gives for it. */
function archive(bytes: number): { ref: ArchiveRef; data: Buffer } {
  const data = randomBytes(bytes);
  const digest = createHash('sha256').update(data).digest('hex');
  return { data, ref: { scriptId: 's', version: 1, digest, size: data.length, scriptUserId: 'owner' } };
}

describe('ArchiveCache', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-archives-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('downloads an archive once, checks it, and keeps the archives within the budget, least recently used first, never one being read', async () => {
    const all = { a: archive(100_000), b: archive(100_000), c: archive(100_000), d: archive(100_000) };
    type Name = keyof typeof all;
    const byDigest = new Map(Object.entries(all).map(([name, a]) => [a.ref.digest, { name, data: a.data }]));
    const downloads: string[] = [];
    const cache = new ArchiveCache(
      dir,
      async function* (ref) {
        const found = byDigest.get(ref.digest)!;
        downloads.push(found.name);
        yield found.data.subarray(0, 50_000);
        yield found.data.subarray(50_000);
      },
      { maxBytes: 250_000 },
    );
    const onDisk = () => (Object.keys(all) as Name[]).filter((n) => fs.existsSync(path.join(dir, `${all[n].ref.digest}.tar.gz`)));
    const [a1, a2] = await Promise.all([cache.acquire(all.a.ref), cache.acquire(all.a.ref)]);
    expect(a1.path).toBe(path.join(dir, `${all.a.ref.digest}.tar.gz`));
    expect(fs.readFileSync(a1.path).equals(all.a.data)).toBe(true);
    expect(downloads).toEqual(['a']);
    (await cache.acquire(all.b.ref)).release();
    (await cache.acquire(all.c.ref)).release();
    await cache.idle();
    // a is being read (extracted) by two runs: b goes instead.
    expect(onDisk()).toEqual(['a', 'c']);
    a1.release();
    a2.release();
    (await cache.acquire(all.d.ref)).release();
    await cache.idle();
    expect(onDisk()).toEqual(['c', 'd']);
    expect(cache.bytes).toBe(200_000);
    // a, removed, is downloaded again when a run needs it.
    (await cache.acquire(all.a.ref)).release();
    expect(downloads).toEqual(['a', 'b', 'c', 'd', 'a']);
  });

  it('refuses a download that does not match its digest, leaving nothing behind', async () => {
    const a = archive(1000);
    const cache = new ArchiveCache(dir, async function* () {
      yield randomBytes(1000);
    });
    await expect(cache.acquire(a.ref)).rejects.toThrow(/does not match its digest/);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(cache.bytes).toBe(0);
  });

  it('counts at start the archives an earlier process left (oldest removed first past the budget) and removes its partial downloads', async () => {
    const old = archive(100_000);
    const newer = archive(100_000);
    for (const [a, hoursAgo] of [
      [old, 2],
      [newer, 1],
    ] as const) {
      const file = path.join(dir, `${a.ref.digest}.tar.gz`);
      fs.writeFileSync(file, a.data);
      const when = new Date(Date.now() - hoursAgo * 3600_000);
      fs.utimesSync(file, when, when);
    }
    const partial = path.join(dir, `${old.ref.digest}.tar.gz.4194305.abcd1234.part`);
    const mine = path.join(dir, `${newer.ref.digest}.tar.gz.${process.ppid}.abcd1234.part`);
    fs.writeFileSync(partial, 'half');
    fs.writeFileSync(mine, 'in progress');
    const cache = new ArchiveCache(
      dir,
      async function* () {
        yield Buffer.alloc(0);
        throw new Error('no downloads here');
      },
      { maxBytes: 150_000 },
    );
    expect(await cache.recover()).toEqual({ archives: 2, partial: 1 });
    expect(fs.readdirSync(dir).sort()).toEqual([`${newer.ref.digest}.tar.gz`, path.basename(mine)].sort());
    expect(cache.bytes).toBe(100_000);
    // Known: found without a download.
    expect((await cache.acquire(newer.ref)).path).toBe(path.join(dir, `${newer.ref.digest}.tar.gz`));
  });
});
