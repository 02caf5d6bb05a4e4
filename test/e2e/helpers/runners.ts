/**
 * More runners for end-to-end tests: a second runner process beside the harness's (the
 * same machine, the same task queue, the same runner directory, as two runner processes on
 * one host would be), and finding which runner process executes a given run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, join, resolve } from 'node:path';
import { readStackInfo } from '../../harness/stack';

/** Variables a runner must not inherit (it holds no platform secrets). */
const notInherited = ['PORT', 'DATABASE_URL', 'PGPASSWORD', 'KEYCLOAK_CLIENT_SECRET', 'EXECUTION_TOKEN_SECRET', 'GEF_ADMIN_PASSWORD', 'METRICS_PORT', 'SERVICE_API_KEY'];

const repoRoot = resolve(__dirname, '../../..');

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export interface ExtraRunner {
  pid: number;
  /** SIGKILL to its process group (a crash); resolves once it exited. */
  kill(): Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  readonly exited: boolean;
}

/** Starts one more runner with the harness runner's settings and waits until it is ready. */
export async function startExtraRunner(name = 'runner-extra'): Promise<ExtraRunner> {
  const info = readStackInfo();
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of notInherited) delete env[key];
  Object.assign(env, info.env.runner, { METRICS_PORT: String(port) });
  delete env['KEYCLOAK_CLIENT_SECRET'];
  const logFile = join(info.logDir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'services/runner/src/main.ts')], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  if (child.pid === undefined) throw new Error('could not start another runner');
  const pid = child.pid;
  let exited = false;
  const exit = new Promise<void>((r) => child.once('exit', () => ((exited = true), r())));
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (exited) throw new Error(`the extra runner exited while starting; see ${logFile}`);
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`the extra runner did not start; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-pid, s);
    } catch {
      // already gone
    }
  };
  return {
    pid,
    get exited() {
      return exited;
    },
    kill: async () => {
      signal('SIGKILL');
      await exit;
    },
    stop: async (graceMs = 10_000) => {
      if (exited) return;
      signal('SIGTERM');
      const timer = setTimeout(() => signal('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid …; comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[1]);
  } catch {
    return undefined;
  }
}

/**
 * The processes of a run's script, by pid: those started with `EXECUTION_ID=<id>` in their
 * environment, or working in the run's directory (named `<id>-a<attempt>-…`; an interpreter
 * of the runner's pool gets the run's environment only once it is given the run).
 */
export function scriptProcesses(executionId: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (environ.includes(`EXECUTION_ID=${executionId}`) || basename(readlinkSync(`/proc/${entry}/cwd`)).startsWith(`${executionId}-a`)) out.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

/** Which of `runnerPids` is an ancestor of the script of this run (undefined: none yet). */
export function runnerOf(executionId: string, runnerPids: readonly number[]): number | undefined {
  for (const pid of scriptProcesses(executionId)) {
    for (let p: number | undefined = pid, depth = 0; p !== undefined && p > 1 && depth < 50; p = parentOf(p), depth++) {
      if (runnerPids.includes(p)) return p;
    }
  }
  return undefined;
}
