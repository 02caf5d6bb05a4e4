import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

/** One entry of a tree, relative to its root; directories come before what they hold. */
export type TreeEntry =
  | { kind: 'dir'; rel: string; mode: number }
  | { kind: 'file'; rel: string; mode: number; size: number }
  | { kind: 'link'; rel: string; target: string };

export interface TreeManifest {
  entries: TreeEntry[];
  bytes: number;
}

/**
 * Trees copied whole in one synchronous pass when at most this big: a few file system
 * calls each, far cheaper than a trip through the thread pool per call (a script of a few
 * files took 10–15 ms to copy call by call, under a millisecond in one pass). Bigger trees
 * are copied call by call, so the event loop is never held for long.
 */
export const syncCopyLimit = { entries: 256, bytes: 2 * 1024 * 1024 };

/** The entries of a tree: directories, regular files (with their modes) and symbolic links; nothing else. */
export async function readTree(root: string): Promise<TreeManifest> {
  const entries: TreeEntry[] = [];
  let bytes = 0;
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await fs.readdir(path.join(root, rel), { withFileTypes: true })) {
      const child = rel ? path.join(rel, entry.name) : entry.name;
      const full = path.join(root, child);
      if (entry.isDirectory()) {
        entries.push({ kind: 'dir', rel: child, mode: (await fs.lstat(full)).mode & 0o7777 });
        await walk(child);
      } else if (entry.isFile()) {
        const stat = await fs.lstat(full);
        entries.push({ kind: 'file', rel: child, mode: stat.mode & 0o777, size: stat.size });
        bytes += stat.size;
      } else if (entry.isSymbolicLink()) {
        entries.push({ kind: 'link', rel: child, target: await fs.readlink(full) });
      }
    }
  };
  await walk('');
  return { entries, bytes };
}

/** The file system calls a copy makes, synchronous or not. */
interface Calls {
  mkdir(dir: string): unknown;
  copyFile(from: string, to: string): unknown;
  symlink(target: string, at: string): unknown;
  lchown(target: string, uid: number): unknown;
  chmod(target: string, mode: number): unknown;
}

const syncCalls: Calls = {
  mkdir: (dir) => fsSync.mkdirSync(dir, { mode: 0o700 }),
  copyFile: (from, to) => fsSync.copyFileSync(from, to, fsSync.constants.COPYFILE_EXCL),
  symlink: (target, at) => fsSync.symlinkSync(target, at),
  lchown: (target, uid) => fsSync.lchownSync(target, uid, uid),
  chmod: (target, mode) => fsSync.chmodSync(target, mode),
};

const asyncCalls: Calls = {
  mkdir: (dir) => fs.mkdir(dir, { mode: 0o700 }),
  copyFile: (from, to) => fs.copyFile(from, to, fsSync.constants.COPYFILE_EXCL),
  symlink: (target, at) => fs.symlink(target, at),
  lchown: (target, uid) => fs.lchown(target, uid, uid),
  chmod: (target, mode) => fs.chmod(target, mode),
};

/**
 * Copies a tree (as its manifest lists it) into `to`, every entry owned by `uid` when
 * given: directories are made private first and get their own modes last (so a read-only
 * directory of the archive can still be filled), files keep their modes, links are made
 * as they are (never followed).
 */
export async function copyTree(from: string, manifest: TreeManifest, to: string, uid: number | undefined): Promise<void> {
  const small = manifest.entries.length <= syncCopyLimit.entries && manifest.bytes <= syncCopyLimit.bytes;
  const calls = small ? syncCalls : asyncCalls;
  for (const entry of manifest.entries) {
    const target = path.join(to, entry.rel);
    if (entry.kind === 'dir') await calls.mkdir(target);
    else if (entry.kind === 'file') {
      await calls.copyFile(path.join(from, entry.rel), target);
      await calls.chmod(target, entry.mode);
    } else await calls.symlink(entry.target, target);
    if (uid !== undefined) await calls.lchown(target, uid);
  }
  // Deepest first: a directory's own mode may forbid making what it holds.
  for (let i = manifest.entries.length - 1; i >= 0; i--) {
    const entry = manifest.entries[i]!;
    if (entry.kind === 'dir') await calls.chmod(path.join(to, entry.rel), entry.mode);
  }
}
