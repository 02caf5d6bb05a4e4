import { readFileSync, readdirSync } from 'node:fs';

/** Several processes, each with all its descendants, from one scan of /proc (each process first). */
export function processTrees(pids: readonly number[]): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // gone meanwhile
    }
  }
  const trees = new Map<number, number[]>();
  for (const pid of pids) {
    const tree: number[] = [];
    const stack = [pid];
    while (stack.length > 0) {
      const p = stack.pop()!;
      tree.push(p);
      stack.push(...(children.get(p) ?? []));
    }
    trees.set(pid, tree);
  }
  return trees;
}

/** A process and all its descendants, from /proc (the process first). */
export const processTree = (pid: number): number[] => processTrees([pid]).get(pid)!;

/** One field (KiB) of a /proc file of a process; 0 when it is gone. */
function procKib(pid: number, file: 'status' | 'smaps_rollup', field: 'VmRSS' | 'Pss'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'));
    return Number(m?.[1] ?? 0);
  } catch {
    return 0; // gone meanwhile
  }
}

/** Resident memory (KiB) of one process. */
export const rssKib = (pid: number): number => procKib(pid, 'status', 'VmRSS');

/** Proportional set size (KiB) of one process. */
export const pssKib = (pid: number): number => procKib(pid, 'smaps_rollup', 'Pss');

/** Resident memory (KiB) of a process and all its descendants, from /proc. */
export const treeRssKib = (pid: number): number => processTree(pid).reduce((sum, p) => sum + rssKib(p), 0);

/**
 * Proportional set size (KiB) of a process and its descendants: each shared page counted
 * once across its sharers (the fair sum for PostgreSQL, whose backends all map the same
 * shared buffers, each showing the pages it touched in its own RSS).
 */
export const treePssKib = (pid: number): number => processTree(pid).reduce((sum, p) => sum + pssKib(p), 0);

/** Resident memory of a process tree over some work (MiB). */
export interface RssRun {
  beforeMiB: number;
  peakMiB: number;
  growthMiB: number;
}

/** Peak resident memory of process trees while `work` runs, sampled every 10 ms. */
export async function peakRss<K extends string>(pids: Record<K, number>, work: () => Promise<void>): Promise<Record<K, RssRun>> {
  const parts = Object.keys(pids) as K[];
  const sample = () => Object.fromEntries(parts.map((k) => [k, treeRssKib(pids[k])])) as Record<K, number>;
  const before = sample();
  const peak = { ...before };
  let running = true;
  const sampler = (async () => {
    while (running) {
      const now = sample();
      for (const k of parts) peak[k] = Math.max(peak[k], now[k]);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  try {
    await work();
  } finally {
    running = false;
    await sampler;
  }
  const mib = (kib: number) => Number((kib / 1024).toFixed(1));
  return Object.fromEntries(parts.map((k) => [k, { beforeMiB: mib(before[k]), peakMiB: mib(peak[k]), growthMiB: mib(peak[k] - before[k]) }])) as Record<K, RssRun>;
}
