import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

/**
 * System V IPC objects (shared memory, message queues, semaphore sets) outlive the processes
 * that made them: a run's would stay readable to later runs and hold memory outside every
 * limit. The runner removes those a sandbox user created or owns when its run ends.
 */
const tables = [
  { file: '/proc/sysvipc/shm', id: 'shmid', flag: '-m' },
  { file: '/proc/sysvipc/msg', id: 'msqid', flag: '-q' },
  { file: '/proc/sysvipc/sem', id: 'semid', flag: '-s' },
] as const;

/** The `ipcrm` arguments naming every object `uid` owns or created (`/proc/sysvipc`, read as text). */
export function sysvIpcArgs(uid: number, read: (file: string) => string | undefined = readOrUndefined): string[] {
  const args: string[] = [];
  for (const table of tables) {
    const text = read(table.file);
    if (!text) continue;
    const [header = '', ...rows] = text.split('\n');
    const columns = header.trim().split(/\s+/);
    const at = { id: columns.indexOf(table.id), uid: columns.indexOf('uid'), cuid: columns.indexOf('cuid') };
    if (at.id < 0 || at.uid < 0 || at.cuid < 0) continue;
    for (const row of rows) {
      const cells = row.trim().split(/\s+/);
      if (cells.length < columns.length) continue;
      // The creator too: an owner may hand the object to another uid (IPC_SET).
      if (Number(cells[at.uid]) === uid || Number(cells[at.cuid]) === uid) args.push(table.flag, cells[at.id]!);
    }
  }
  return args;
}

function readOrUndefined(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Removes the System V IPC objects of `uid`; how many it asked `ipcrm` to remove. */
export function removeSysvIpcOf(uid: number): number {
  const args = sysvIpcArgs(uid);
  if (args.length === 0) return 0;
  // An object gone meanwhile makes ipcrm report it and remove the others all the same.
  spawnSync('ipcrm', args, { stdio: 'ignore', env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' } });
  return args.length / 2;
}
