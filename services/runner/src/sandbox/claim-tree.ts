import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * The mode an entry keeps once claimed: what its owner could do, and the same without
 * writing for everyone else; never setuid, setgid or sticky. Directories stay enterable.
 */
function claimedMode(mode: number, directory: boolean): number {
  const owner = directory ? 0o7 : (mode >> 6) & 0o7;
  const others = owner & 0o5;
  return (owner << 6) | (others << 3) | others;
}

/**
 * Hands over to the runner (root) a tree that a sandbox user made, such as an environment a
 * build's user installed: every entry that user owns becomes root's, readable (and, where
 * its owner could run it, runnable) by everyone and writable by no one else. Symbolic links
 * are claimed themselves and never followed. Entries of other owners are left as they are.
 * Call it once nothing of that user runs any more, so that nothing changes the tree meanwhile.
 */
export async function claimTree(root: string, uid: number): Promise<number> {
  let claimed = 0;
  const pending = [root];
  while (pending.length > 0) {
    const target = pending.pop()!;
    const stat = await fs.lstat(target);
    if (stat.uid === uid) {
      await fs.lchown(target, 0, 0);
      if (!stat.isSymbolicLink()) await fs.chmod(target, claimedMode(stat.mode, stat.isDirectory()));
      claimed++;
    }
    if (stat.isDirectory()) {
      for (const name of await fs.readdir(target)) pending.push(path.join(target, name));
    }
  }
  return claimed;
}
