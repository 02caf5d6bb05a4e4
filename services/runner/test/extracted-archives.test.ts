import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ExtractedArchives } from '../src/archives/extracted-archives';
import { Fixture, isRoot } from './support/run-script-fixture';

// Archives extracted once per digest and copied into run directories, with the real tar in
// the sandbox (as unprivileged users when the tests run as root, as they do here).
describe('extracted archives', () => {
  let fixture: Fixture;
  let archive: string;
  const digest = 'a'.repeat(64);

  beforeAll(async () => {
    fixture = await new Fixture(isRoot ? 'on' : 'off').init();
    const src = fs.mkdtempSync(path.join(fixture.tmp, 'src-'));
    fs.mkdirSync(path.join(src, 'src'));
    fs.writeFileSync(path.join(src, 'src', 'main.py'), 'def run(params, logger):\n    return 1\n');
    fs.writeFileSync(path.join(src, 'tool.sh'), '#!/bin/sh\n');
    fs.chmodSync(path.join(src, 'tool.sh'), 0o755);
    fs.symlinkSync('/etc/hostname', path.join(src, 'link'));
    archive = `${src}.tar.gz`;
    execFileSync('tar', ['-czf', archive, '-C', src, '.']);
  });
  afterAll(() => fixture.cleanup());

  it('extracts an archive once, into a tree only the runner reaches, and copies it into each run as the run\'s user', async () => {
    const extracted = new ExtractedArchives(fixture.dirs.extracted, fixture.sandbox);
    const asked: string[] = [];
    const source = () => {
      asked.push(archive);
      return Promise.resolve({ path: archive, release: () => undefined });
    };
    const [first, second] = await Promise.all([extracted.acquire(digest, fixture.limits(), source), extracted.acquire(digest, fixture.limits(), source)]);
    const tree = first.path;
    expect(second.path).toBe(tree);
    expect(asked).toHaveLength(1);
    first.release();
    second.release();
    expect(fs.readdirSync(fixture.dirs.extracted)).toEqual([digest]);
    const self = process.getuid?.() ?? 0;
    expect(fs.lstatSync(path.join(tree, 'src', 'main.py')).uid).toBe(self);
    expect(fs.statSync(fixture.dirs.extracted).mode & 0o777).toBe(0o700);
    // Found again without its archive.
    expect((await extracted.acquire(digest, fixture.limits(), () => Promise.reject(new Error('not needed')))).path).toBe(tree);
    // A later runner process finds it on disk.
    const later = new ExtractedArchives(fixture.dirs.extracted, fixture.sandbox);
    expect((await later.acquire(digest, fixture.limits(), () => Promise.reject(new Error('not needed')))).path).toBe(tree);
    expect(later.bytes).toBeGreaterThan(0);

    const run = await fixture.sandbox.open('populate');
    try {
      await run.populate(tree);
      const owner = run.uid ?? self;
      const main = path.join(run.dir, 'src', 'main.py');
      expect(fs.readFileSync(main, 'utf8')).toContain('def run');
      expect([fs.lstatSync(main).uid, fs.lstatSync(path.join(run.dir, 'src')).uid]).toEqual([owner, owner]);
      // Executable for the run's user, nothing for other users (sandboxed copies are made under umask 077).
      expect(fs.statSync(path.join(run.dir, 'tool.sh')).mode & 0o777).toBe(0o700);
      expect(fs.readlinkSync(path.join(run.dir, 'link'))).toBe('/etc/hostname');
      expect(fs.lstatSync(path.join(run.dir, 'link')).uid).toBe(owner);
      // The run's copy is its own: changing it leaves the tree alone.
      fs.writeFileSync(main, 'changed');
      expect(fs.readFileSync(path.join(tree, 'src', 'main.py'), 'utf8')).toContain('def run');
    } finally {
      await run.close();
    }
  }, 60_000);

  it('refuses an invalid digest and removes half-made trees of runners that are gone', async () => {
    const extracted = new ExtractedArchives(fixture.dirs.extracted, fixture.sandbox);
    await expect(extracted.acquire('../x', fixture.limits(), () => Promise.reject(new Error('not needed')))).rejects.toThrow(/invalid archive digest/);
    const orphan = path.join(fixture.dirs.extracted, '.tmp-abc-4194305-x');
    const mine = path.join(fixture.dirs.extracted, `.tmp-abc-${process.pid}-y`);
    fs.mkdirSync(orphan);
    fs.mkdirSync(mine);
    expect(await extracted.sweep()).toBe(2);
    expect([fs.existsSync(orphan), fs.existsSync(mine)]).toEqual([false, false]);
  });

  /** An archive of one file of `bytes` random bytes, and its tree's size on disk once extracted. */
  function archiveOf(bytes: number): string {
    const src = fs.mkdtempSync(path.join(fixture.tmp, 'sized-'));
    fs.writeFileSync(path.join(src, 'data.bin'), randomBytes(bytes));
    execFileSync('tar', ['-czf', `${src}.tar.gz`, '-C', src, '.']);
    return `${src}.tar.gz`;
  }

  it('keeps its trees within the budget: the least recently used go first, never one a run holds; one bigger than the budget stays alone', async () => {
    const dir = fs.mkdtempSync(path.join(fixture.dirs.root, 'extracted-budget-'));
    const archives = { t1: archiveOf(100_000), t2: archiveOf(100_000), t3: archiveOf(100_000), big: archiveOf(600_000) };
    const digests = { t1: '1'.repeat(64), t2: '2'.repeat(64), t3: '3'.repeat(64), big: 'b'.repeat(64) };
    type Name = keyof typeof digests;
    const extracted = new ExtractedArchives(dir, fixture.sandbox, { maxBytes: 270_000 });
    const made: Name[] = [];
    const take = (name: Name) =>
      extracted.acquire(digests[name], fixture.limits(), () => {
        made.push(name);
        return Promise.resolve({ path: archives[name], release: () => undefined });
      });
    const onDisk = () => (Object.keys(digests) as Name[]).filter((n) => fs.existsSync(path.join(dir, digests[n])));

    const held = await take('t1');
    (await take('t2')).release();
    (await take('t3')).release();
    await extracted.idle();
    // Three trees of ~100 KB do not fit in 270 KB: t1 is the oldest, but a run holds it.
    expect(onDisk()).toEqual(['t1', 't3']);
    // Held, it is still whole (a run copies it).
    await fixture.sandbox.manifest(held.path);
    expect(fs.readdirSync(held.path)).toEqual(['data.bin']);
    held.release();
    await extracted.idle();
    expect(onDisk()).toEqual(['t1', 't3']);
    expect(extracted.bytes).toBeLessThanOrEqual(270_000);

    // Bigger than the budget: alone, until another is used.
    (await take('big')).release();
    await extracted.idle();
    expect(onDisk()).toEqual(['big']);
    // t1, removed, is extracted again when a run needs it.
    (await take('t1')).release();
    await extracted.idle();
    expect(onDisk()).toEqual(['t1']);
    expect(made).toEqual(['t1', 't2', 't3', 'big', 't1']);
    // Nothing half removed is left behind.
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]);
  }, 60_000);

  it('counts at start the trees an earlier process left, removing the oldest past the budget and its half-made ones', async () => {
    const dir = fs.mkdtempSync(path.join(fixture.dirs.root, 'extracted-recover-'));
    const names = ['c'.repeat(64), 'd'.repeat(64), 'e'.repeat(64)];
    names.forEach((name, i) => {
      fs.mkdirSync(path.join(dir, name, 'src'), { recursive: true });
      fs.writeFileSync(path.join(dir, name, 'src', 'data.bin'), randomBytes(100_000));
      // Made in this order, an hour apart.
      const when = new Date(Date.now() - (3 - i) * 3600_000);
      fs.utimesSync(path.join(dir, name), when, when);
    });
    fs.mkdirSync(path.join(dir, '.tmp-cccccccccccc-4194305-ab'));
    const extracted = new ExtractedArchives(dir, fixture.sandbox, { maxBytes: 250_000 });
    expect(await extracted.recover()).toEqual({ trees: 3, removed: 1 });
    expect(fs.readdirSync(dir).sort()).toEqual(names.slice(1));
    expect(extracted.bytes).toBeGreaterThan(200_000);
    expect(extracted.bytes).toBeLessThanOrEqual(250_000);
  }, 60_000);
});
