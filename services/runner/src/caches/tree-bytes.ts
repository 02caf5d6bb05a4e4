import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * What a file or tree takes on disk (allocated blocks, a file with several links once).
 * Symbolic links are not followed. Entries that vanish while it is walked count nothing.
 */
export async function treeBytes(root: string): Promise<number> {
  let bytes = 0;
  const seen = new Set<string>();
  const walk = async (target: string): Promise<void> => {
    const stat = await fs.lstat(target).catch(() => undefined);
    if (!stat) return;
    if (stat.nlink > 1 && !stat.isDirectory()) {
      const id = `${stat.dev}:${stat.ino}`;
      if (seen.has(id)) return;
      seen.add(id);
    }
    bytes += stat.blocks * 512;
    if (!stat.isDirectory()) return;
    for (const name of await fs.readdir(target).catch(() => [] as string[])) await walk(path.join(target, name));
  };
  await walk(root);
  return bytes;
}
