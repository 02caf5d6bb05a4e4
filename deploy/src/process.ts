import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { LaunchError } from './errors';
import { isExecutableFile } from './prerequisites';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnSpec {
  /** The part this process is (used in messages). */
  name: string;
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** stdout and stderr are appended to this file. */
  logFile: string;
  /** Open an IPC channel (for node children that report readiness with process.send). */
  ipc?: boolean;
  /** SIGTERM the child if the launcher dies without stopping it (Linux, `setpriv --pdeathsig`). Default true. */
  dieWithParent?: boolean;
}

/** The line spawn() writes to a log before each start. */
const START_MARK = '\n=== ';

/** An argument as the log keeps it: the value of a `--…password…=` or `--…secret…=` option masked. */
export function loggedArg(arg: string): string {
  return arg.replace(/^(--[^=]*(?:password|secret|token)[^=]*=).+$/i, '$1****');
}

let setprivPath: string | null | undefined;

/** util-linux's setpriv, if present: it sets the parent-death signal and execs the command. */
function setpriv(): string | undefined {
  if (setprivPath === undefined) {
    setprivPath = process.platform === 'linux' ? (['/usr/bin/setpriv', '/bin/setpriv'].find(isExecutableFile) ?? null) : null;
  }
  return setprivPath ?? undefined;
}

/**
 * A child started in its own process group (detached), its output appended to a log
 * file. stop() signals the whole group, so grandchildren (Keycloak's java under kc.sh,
 * postgres under its wrapper) go too.
 */
export class ManagedProcess {
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | undefined;

  private constructor(
    readonly spec: SpawnSpec,
    readonly child: ChildProcess,
  ) {
    if (child.pid === undefined) throw new Error(`could not start ${spec.command}`);
    this.pid = child.pid;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
  }

  /** Spawns the command detached (its own process group); throws a LaunchError if it cannot run at all. */
  static spawn(spec: SpawnSpec): ManagedProcess {
    if (spec.command.includes('/') && !isExecutableFile(spec.command)) {
      throw new LaunchError(`could not start ${spec.name}: ${spec.command} cannot be run`);
    }
    mkdirSync(dirname(spec.logFile), { recursive: true, mode: 0o700 });
    // Logs carry settings and tokens: the launcher's user alone reads them.
    const fd = openSync(spec.logFile, 'a', 0o600);
    try {
      writeSync(fd, `${START_MARK}${new Date().toISOString()} ${spec.command} ${spec.args.map(loggedArg).join(' ')}\n`);
      const stdio: ('ignore' | number | 'ipc')[] = ['ignore', fd, fd];
      if (spec.ipc) stdio.push('ipc');
      const guard = spec.dieWithParent === false ? undefined : setpriv();
      const [command, args] = guard ? [guard, ['--pdeathsig', 'TERM', '--', spec.command, ...spec.args]] : [spec.command, spec.args];
      const child = spawn(command, args, { cwd: spec.cwd, env: spec.env, stdio, detached: true });
      // A spawn failure (ENOENT...) is reported through 'error' and then 'exit'.
      child.on('error', (error) => {
        try {
          const errFd = openSync(spec.logFile, 'a', 0o600);
          writeSync(errFd, `launcher: ${error.message}\n`);
          closeSync(errFd);
        } catch {
          // the log is best effort
        }
      });
      if (child.pid === undefined) {
        throw new LaunchError(`could not start ${spec.name}: ${spec.command} cannot be run`);
      }
      return new ManagedProcess(spec, child);
    } finally {
      closeSync(fd);
    }
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  get exit(): ExitInfo | undefined {
    return this.exitInfo;
  }

  /** TERM to the whole group, KILL after the grace period; resolves when the group is gone. */
  async stop(graceMs: number): Promise<void> {
    if (!groupAlive(this.pid) && !this.running) return;
    signalGroup(this.pid, 'SIGTERM');
    if (await waitGroupGone(this.pid, graceMs, () => this.running)) return;
    signalGroup(this.pid, 'SIGKILL');
    await waitGroupGone(this.pid, 5000, () => this.running);
  }

  /** KILL to the whole group at once (no chance to clean up); resolves when the group is gone. */
  async kill(): Promise<void> {
    signalGroup(this.pid, 'SIGKILL');
    await waitGroupGone(this.pid, 5000, () => this.running);
  }
}

/** What a log holds from the last start spawn() wrote to it (the whole text if it has none). */
export function lastStartLog(logFile: string): string {
  let text: string;
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return '';
  }
  const at = text.lastIndexOf(START_MARK);
  return at < 0 ? text : text.slice(at + 1);
}

export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: nothing left in the group
  }
}

/** Whether the process exists and is not a zombie. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (process.platform !== 'linux') return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** Live (non-zombie) processes, from /proc: each one's pid, parent and process group (Linux). */
function* liveProcesses(): Generator<{ pid: number; ppid: number; pgid: number }> {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] !== 'Z') yield { pid: Number(entry), ppid: Number(fields[1]), pgid: Number(fields[2]) };
  }
}

/**
 * Live (non-zombie) children of a process, from /proc; with `executable`, only those running
 * it (e.g. a cluster's workers, not the helpers a loader started). Linux only: [] elsewhere.
 */
export function childrenOf(pid: number, executable?: string): number[] {
  if (process.platform !== 'linux') return [];
  const wanted = executable === undefined ? undefined : realpathSync(executable);
  const out: number[] = [];
  for (const child of liveProcesses()) {
    if (child.ppid !== pid) continue;
    try {
      if (wanted === undefined || readlinkSync(`/proc/${child.pid}/exe`) === wanted) out.push(child.pid);
    } catch {
      // Gone meanwhile, or not ours to look at.
    }
  }
  return out;
}

/** Whether any live (non-zombie) process is still in the process group. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  if (process.platform !== 'linux') return true;
  // kill(0) also succeeds for zombies nobody reaped yet: look at /proc for live members.
  for (const member of liveProcesses()) if (member.pgid === pgid) return true;
  return false;
}

async function waitGroupGone(pgid: number, timeoutMs: number, leaderRunning: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!leaderRunning() && !groupAlive(pgid)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
