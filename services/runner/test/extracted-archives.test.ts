import { execFileSync } from 'node:child_process';
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
    const [tree, same] = await Promise.all([extracted.get(archive, digest, fixture.limits()), extracted.get(archive, digest, fixture.limits())]);
    expect(same).toBe(tree);
    expect(fs.readdirSync(fixture.dirs.extracted)).toEqual([digest]);
    const self = process.getuid?.() ?? 0;
    expect(fs.lstatSync(path.join(tree, 'src', 'main.py')).uid).toBe(self);
    expect(fs.statSync(fixture.dirs.extracted).mode & 0o777).toBe(0o700);
    // A later runner process finds it on disk.
    expect(await new ExtractedArchives(fixture.dirs.extracted, fixture.sandbox).get('/nonexistent.tar.gz', digest, fixture.limits())).toBe(tree);

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
    await expect(extracted.get(archive, '../x', fixture.limits())).rejects.toThrow(/invalid archive digest/);
    const orphan = path.join(fixture.dirs.extracted, '.tmp-abc-4194305-x');
    const mine = path.join(fixture.dirs.extracted, `.tmp-abc-${process.pid}-y`);
    fs.mkdirSync(orphan);
    fs.mkdirSync(mine);
    expect(await extracted.sweep()).toBe(2);
    expect([fs.existsSync(orphan), fs.existsSync(mine)]).toEqual([false, false]);
  });
});
