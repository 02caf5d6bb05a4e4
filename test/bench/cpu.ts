import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { processTrees } from './memory';

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux unless built otherwise). */
const ticksPerSecond = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU time (ms, user and system) a process has used, with that of its children it has
 * waited for; 0 when it is gone.
 */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ": state, ppid, …; utime, stime, cutime, cstime are the 12th to 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);
    return (ticks * 1000) / ticksPerSecond;
  } catch {
    return 0;
  }
}

/** The stack's processes by part, read when called (a part may have restarted). */
export type StackPids = () => Record<string, number | undefined>;

/**
 * CPU time (ms) of each named process with its descendants alive now, from one scan of
 * /proc; a descendant that ended counts in its parent once waited for (a run's interpreter
 * in the runner's fork server).
 */
export function cpuOfParts(pids: Record<string, number | undefined>): Record<string, number> {
  const named = Object.entries(pids).filter((entry): entry is [string, number] => entry[1] !== undefined && entry[1] > 0);
  const trees = processTrees(named.map(([, pid]) => pid));
  return Object.fromEntries(named.map(([part, pid]) => [part, trees.get(pid)!.reduce((sum, p) => sum + cpuMs(p), 0)]));
}

/**
 * CPU time per unit of work of each part between two readings (ms, one decimal), with the
 * parts' sum as `total`; largest first.
 */
export function cpuPerUnit(before: Record<string, number>, after: Record<string, number>, units: number): Record<string, number> {
  const per = Object.entries(after)
    .filter(([part]) => part in before)
    .map(([part, ms]) => [part, Math.round(((ms - before[part]!) / units) * 10) / 10] as const)
    .sort((a, b) => b[1] - a[1]);
  const total = Math.round(per.reduce((sum, [, ms]) => sum + ms, 0) * 10) / 10;
  return { ...Object.fromEntries(per), total };
}

/** `part 12.3, other 4.5 … total 16.8` (ms per unit). */
export const cpuLine = (per: Record<string, number>): string =>
  Object.entries(per)
    .map(([part, ms]) => `${part} ${ms}`)
    .join(', ');

/**
 * Waits until the stack is quiet: its processes together used under `maxShare` of one core
 * over a window of `windowMs` (a burst's runs leave work behind them: run directories
 * cleared, Temporal's caches and timers). Gives up after `maxMs`. The milliseconds waited.
 */
export async function waitQuiet(pids: StackPids, maxMs = 60_000, windowMs = 1000, maxShare = 0.1): Promise<number> {
  const began = performance.now();
  const total = () => Object.values(cpuOfParts(pids())).reduce((sum, ms) => sum + ms, 0);
  let before = total();
  while (performance.now() - began < maxMs) {
    await new Promise((r) => setTimeout(r, windowMs));
    const now = total();
    if (now - before < windowMs * maxShare) break;
    before = now;
  }
  return Math.round(performance.now() - began);
}
