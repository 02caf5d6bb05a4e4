import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { isAlive } from '../process/is-alive';

/**
 * Memory control groups of sandbox runs. prlimit's address-space limit holds per process:
 * a script that forks N children may use N times its memory (and files in /dev/shm use
 * memory no process maps). A run's cgroup holds all its processes, whatever they fork, with
 * one memory limit for them together (tmpfs pages included); the kernel kills a process of
 * the run (not of the runner) when the run goes past it, and counts that (oom_kill).
 *
 * cgroup v1 (a `memory` hierarchy) or v2 (the unified one, when the memory controller can
 * be delegated below the runner's own group). Each runner process keeps its runs' groups
 * under `<its group>/gef-sandbox-<pid>/`; the groups of runners that died are removed by the
 * next one.
 */
export interface MemoryCgroups {
  version: 1 | 2;
  /** This runner's parent group of its runs. */
  root: string;
  /**
   * v1: the same parent group in the cpuacct hierarchy, where the runs' CPU time is counted
   * (v2 counts it in every group); undefined where there is none or it cannot be written.
   */
  cpuacctRoot?: string;
}

const prefix = 'gef-sandbox-';

/** This process's lines of /proc/self/cgroup (`id:controllers:group`), or undefined. */
function ownCgroupLines(): string[] | undefined {
  try {
    return fsSync.readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  } catch {
    return undefined;
  }
}

/** This process's group in the v1 hierarchy of `controller`, when `file` shows it is one. */
function ownV1Group(lines: string[], controller: string, file: string): string | undefined {
  for (const line of lines) {
    const [, controllers, group] = line.split(':');
    if (controllers?.split(',').includes(controller) && group !== undefined) {
      const dir = path.join('/sys/fs/cgroup', controller, group);
      if (fsSync.existsSync(path.join(dir, file))) return dir;
    }
  }
  return undefined;
}

/** Where this process's memory cgroup is (v1 memory hierarchy, else v2), or undefined. */
function ownGroup(): { version: 1 | 2; dir: string } | undefined {
  const lines = ownCgroupLines();
  if (!lines) return undefined;
  const v1 = ownV1Group(lines, 'memory', 'memory.limit_in_bytes');
  if (v1) return { version: 1, dir: v1 };
  const unified = lines.find((l) => l.startsWith('0::'));
  if (unified !== undefined && fsSync.existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    return { version: 2, dir: path.join('/sys/fs/cgroup', unified.slice(3)) };
  }
  return undefined;
}

/** A runner's parent group in a hierarchy, those of runners that died removed first. */
async function parentGroup(own: string): Promise<string> {
  for (const name of await fs.readdir(own).catch(() => [] as string[])) {
    const pid = Number(name.slice(prefix.length));
    if (name.startsWith(prefix) && Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) await removeGroup(path.join(own, name));
  }
  const root = path.join(own, `${prefix}${process.pid}`);
  await fs.mkdir(root, { recursive: true });
  return root;
}

/** The processes of a group (none when it is gone). */
function groupPids(procs: string): number[] {
  let text: string;
  try {
    text = fsSync.readFileSync(procs, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map(Number);
}

/** Removes a group and the groups in it (their processes must be gone). */
async function removeGroup(dir: string): Promise<void> {
  for (const entry of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (entry.isDirectory()) await removeGroup(path.join(dir, entry.name));
  }
  await fs.rmdir(dir).catch(() => undefined);
}

/**
 * Sets up this runner's parent group of runs (and removes those of runners that died).
 * Throws when memory cgroups cannot be used here (no hierarchy, not writable, the v2
 * controller not delegable).
 */
export async function setUpMemoryCgroups(): Promise<MemoryCgroups> {
  const own = ownGroup();
  if (!own) throw new Error('no memory cgroup hierarchy (/proc/self/cgroup, /sys/fs/cgroup)');
  const root = await parentGroup(own.dir);
  if (own.version === 2) {
    // The memory controller for the runs' groups: enabled in the runner's group (refused
    // when that group holds processes and is not the root) and in the parent of the runs.
    await fs.writeFile(path.join(own.dir, 'cgroup.subtree_control'), '+memory');
    await fs.writeFile(path.join(root, 'cgroup.subtree_control'), '+memory');
  }
  const groups: MemoryCgroups = { version: own.version, root };
  // A trial group: limits can be written.
  const trial = await openRunGroup(groups, 'trial');
  await trial.setLimit(64 * 1024 ** 2);
  await trial.remove();
  // v1 counts CPU time in a hierarchy of its own: without it, runs are not watched for it.
  const lines = own.version === 1 ? ownCgroupLines() : undefined;
  const cpuacct = lines && ownV1Group(lines, 'cpuacct', 'cpuacct.usage');
  if (cpuacct) {
    try {
      groups.cpuacctRoot = await parentGroup(cpuacct);
    } catch {
      // Not writable here.
    }
  }
  return groups;
}

/** One run's memory group. */
export interface RunGroup {
  /**
   * The group's cgroup.procs, and on v1 its cpuacct group's, joined by ':': a pid written
   * to each puts the process (and what it forks) in the run's groups.
   */
  procs: string;
  /** The group's memory limit (swap included where the kernel accounts it). */
  setLimit(bytes: number): Promise<void>;
  /** The same, synchronously (before a process is spawned into it). */
  setLimitSync(bytes: number): void;
  /** Processes of the run the kernel killed for going past the limit. */
  oomKills(): number;
  /**
   * The CPU time the group's processes used, in seconds, those that ended included
   * (cgroup v2's cpu.stat, kept in every group); undefined where it is not kept (v1).
   */
  cpuSeconds(): number | undefined;
  /**
   * SIGKILL to every process in the group until none is left: a process cannot leave its
   * group, so this finds what the run started wherever it went (another session, a process
   * made non-dumpable), with no process spawned to do it. False when some were still there
   * after `rounds` rounds of 10 ms.
   */
  killAll(rounds?: number): Promise<boolean>;
  /** One round of killAll, at once: SIGKILL to the processes in the group now; how many. */
  killMembers(): number;
  /** The processes in the group now. */
  members(): number[];
  /** Removes the group (its processes gone), retrying while the kernel lets them go. */
  remove(): Promise<void>;
}

/** A group for one run (made, or reused when a previous run of that name left it). */
export async function openRunGroup(groups: MemoryCgroups, name: string): Promise<RunGroup> {
  const dir = path.join(groups.root, name);
  await fs.mkdir(dir, { recursive: true });
  const cpuacct = groups.cpuacctRoot && path.join(groups.cpuacctRoot, name);
  if (cpuacct) await fs.mkdir(cpuacct, { recursive: true });
  const v1 = groups.version === 1;
  const limitFiles = v1 ? ['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes'] : ['memory.max', 'memory.swap.max'];
  const values = (bytes: number) => (v1 ? [String(Math.floor(bytes)), String(Math.floor(bytes))] : [String(Math.floor(bytes)), '0']);
  const setLimitSync = (bytes: number) => {
    const [limit, swap] = values(bytes);
    // v1: memsw must stay at least the limit, so it is raised first when the limit grows
    // and written after it when the limit shrinks; both orders are tried.
    const write = (file: string, value: string) => fsSync.writeFileSync(path.join(dir, file), value);
    const hasSwapFile = fsSync.existsSync(path.join(dir, limitFiles[1]!));
    try {
      write(limitFiles[0]!, limit!);
      if (hasSwapFile) write(limitFiles[1]!, swap!);
    } catch (err) {
      if (!hasSwapFile) throw err;
      write(limitFiles[1]!, swap!);
      write(limitFiles[0]!, limit!);
    }
  };
  const killMembers = (): number => {
    const pids = groupPids(path.join(dir, 'cgroup.procs'));
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    return pids.length;
  };
  return {
    procs: [dir, ...(cpuacct ? [cpuacct] : [])].map((d) => path.join(d, 'cgroup.procs')).join(':'),
    setLimit: async (bytes) => {
      setLimitSync(bytes);
      await Promise.resolve();
    },
    setLimitSync,
    oomKills() {
      try {
        const text = fsSync.readFileSync(path.join(dir, v1 ? 'memory.oom_control' : 'memory.events'), 'utf8');
        return Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0);
      } catch {
        return 0;
      }
    },
    cpuSeconds() {
      try {
        if (v1) return cpuacct ? Number(fsSync.readFileSync(path.join(cpuacct, 'cpuacct.usage'), 'utf8')) / 1e9 : undefined;
        const usec = /^usage_usec (\d+)$/m.exec(fsSync.readFileSync(path.join(dir, 'cpu.stat'), 'utf8'))?.[1];
        return usec === undefined ? undefined : Number(usec) / 1e6;
      } catch {
        return undefined;
      }
    },
    killMembers,
    members: () => groupPids(path.join(dir, 'cgroup.procs')),
    async killAll(rounds = 100) {
      for (let i = 0; i < rounds; i++) {
        if (killMembers() === 0) return true;
        await new Promise((r) => setTimeout(r, i === 0 ? 1 : 10));
      }
      return groupPids(path.join(dir, 'cgroup.procs')).length === 0;
    },
    async remove() {
      for (const group of [dir, ...(cpuacct ? [cpuacct] : [])]) {
        for (let i = 0; i < 50; i++) {
          try {
            await fs.rmdir(group);
            break;
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
            await new Promise((r) => setTimeout(r, 20));
          }
        }
      }
    },
  };
}

/** Removes this runner's parent group (on shutdown, its runs ended). */
export async function removeMemoryCgroups(groups: MemoryCgroups): Promise<void> {
  await removeGroup(groups.root);
  if (groups.cpuacctRoot) await removeGroup(groups.cpuacctRoot);
}
