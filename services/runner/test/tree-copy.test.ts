import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { copyTree, readTree, syncCopyLimit } from '../src/sandbox/tree-copy';

describe('copying an extracted tree into a run directory', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-tree-copy-'));
  });
  afterEach(() => {
    // Read-only directories of the copies are opened again so they can be removed.
    for (const dir of [tmp, ...fs.readdirSync(tmp, { recursive: true }).map((p) => path.join(tmp, String(p)))]) {
      if (fs.lstatSync(dir).isDirectory()) fs.chmodSync(dir, 0o700);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** A tree of `files` files (and a read-only directory, an executable, a link, a FIFO). */
  function makeTree(files: number, fileBytes = 10): string {
    const root = path.join(tmp, `tree-${files}`);
    fs.mkdirSync(path.join(root, 'src', 'data'), { recursive: true });
    for (let i = 0; i < files; i++) fs.writeFileSync(path.join(root, 'src', 'data', `f${i}.txt`), 'x'.repeat(fileBytes));
    fs.writeFileSync(path.join(root, 'src', 'main.py'), 'def run(params, logger):\n    return 1\n');
    fs.writeFileSync(path.join(root, 'tool.sh'), '#!/bin/sh\n', { mode: 0o750 });
    fs.symlinkSync('/etc/hostname', path.join(root, 'link'));
    fs.mkdirSync(path.join(root, 'readonly'));
    fs.writeFileSync(path.join(root, 'readonly', 'kept.txt'), 'kept');
    fs.chmodSync(path.join(root, 'readonly'), 0o500);
    return root;
  }

  /** What a tree holds: each entry's kind, mode and content or link target. */
  function describe(root: string): string[] {
    return (fs.readdirSync(root, { recursive: true }) as string[]).sort().map((rel) => {
      const full = path.join(root, rel);
      const stat = fs.lstatSync(full);
      if (stat.isSymbolicLink()) return `${rel} -> ${fs.readlinkSync(full)}`;
      if (stat.isDirectory()) return `${rel}/ ${(stat.mode & 0o7777).toString(8)}`;
      if (!stat.isFile()) return `${rel} (special)`;
      return `${rel} ${(stat.mode & 0o777).toString(8)} ${fs.readFileSync(full, 'utf8').length}`;
    });
  }

  it.each([
    ['a small tree, in one pass', 3, 10],
    ['a tree of many files, call by call', syncCopyLimit.entries + 10, 10],
    ['a tree of large files, call by call', 2, syncCopyLimit.bytes],
  ])('copies %s exactly: directories, files with their modes, links as they are, nothing else', async (_what, files, bytes) => {
    const root = makeTree(files, bytes);
    execFileSync('mkfifo', [path.join(root, 'fifo')]);
    const manifest = await readTree(root);
    expect(manifest.entries.some((e) => e.rel === 'fifo')).toBe(false);
    expect(manifest.bytes).toBe(files * bytes + 'def run(params, logger):\n    return 1\n'.length + '#!/bin/sh\n'.length + 'kept'.length);
    // Directories before what they hold.
    const seen = new Set<string>();
    for (const e of manifest.entries) {
      expect(seen.has(path.dirname(e.rel)) || path.dirname(e.rel) === '.').toBe(true);
      seen.add(e.rel);
    }
    const run = path.join(tmp, 'run');
    fs.mkdirSync(run, { mode: 0o700 });
    await copyTree(root, manifest, run, process.getuid?.() === 0 ? 65_534 : undefined);
    const expected = describe(root).filter((d) => d !== 'fifo (special)');
    expect(expected.length).toBe(describe(root).length - 1);
    expect(describe(run)).toEqual(expected);
    if (process.getuid?.() === 0) expect(fs.lstatSync(path.join(run, 'readonly', 'kept.txt')).uid).toBe(65_534);
    // The copy is its own.
    fs.writeFileSync(path.join(run, 'src', 'main.py'), 'changed');
    expect(fs.readFileSync(path.join(root, 'src', 'main.py'), 'utf8')).toContain('def run');
  });
});
