import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { createLogger } from '@gef/common';
import { ForkServer } from '../src/runtimes/python/fork-server';
import { PythonInterpreter, type ScriptLevel } from '../src/runtimes/python/run-python';
import type { SandboxLimits } from '../src/sandbox/sandbox';
import { Fixture, isRoot, python } from './support/run-script-fixture';

const limits: SandboxLimits = { memoryBytes: 1024 ** 3, cpuSeconds: 60, processes: 64, openFiles: 256, fileBytes: 64 * 1024 ** 2 };
const env = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' };

/** The parent pid of a process, from /proc. */
function parentOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** A process's state letter, or 'gone'. */
function stateOf(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return 'gone';
  }
}

// The fork server with the real python3 (its children as unprivileged users when the tests
// run as root, as they do here).
describe('the Python fork server', () => {
  let fixture: Fixture;

  beforeAll(async () => {
    fixture = await new Fixture(isRoot ? 'on' : 'off', true).init();
  });
  afterAll(() => fixture.cleanup());

  async function forked(): Promise<PythonInterpreter> {
    const run = await fixture.sandbox.open('fork');
    const interpreter = await PythonInterpreter.start({ sandbox: run, python, shim: fixture.shim, limits, env: { ...env, HOME: run.dir }, forkServer: fixture.forkServer! });
    expect(interpreter.forked).toBe(true);
    expect(await interpreter.ready).toBe(true);
    return interpreter;
  }

  async function runIn(interpreter: PythonInterpreter, main: string) {
    fs.mkdirSync(path.join(interpreter.sandbox.dir, 'src'), { mode: 0o755 });
    fs.writeFileSync(path.join(interpreter.sandbox.dir, 'src', 'main.py'), main, { mode: 0o644 });
    const lines: { level: ScriptLevel; text: string }[] = [];
    const running = interpreter.run({
      params: {},
      env: { ...env, HOME: interpreter.sandbox.dir, API_TOKEN: 'the-run-token' },
      limits,
      timeoutMs: 20_000,
      killGraceMs: 500,
      onLog: (level, text) => lines.push({ level, text }),
      onProgress: () => undefined,
    });
    return { outcome: await running.outcome, lines };
  }

  it('forks interpreters with nothing of the server open but their own streams, as the run\'s user', async () => {
    const interpreter = await forked();
    expect(parentOf(interpreter.pid!)).toBe(fixture.forkServer!.pid);
    const main = [
      'import os',
      'def run(params, logger):',
      '    print("to stdout")',
      '    return {"fds": sorted(int(n) for n in os.listdir("/proc/self/fd")), "uid": os.getuid(), "sid": os.getsid(0), "pid": os.getpid(), "umask": os.umask(0)}',
    ].join('\n');
    const { outcome, lines } = await runIn(interpreter, main);
    expect(outcome.kind).toBe('result');
    const got = JSON.parse((outcome as { resultJson: string }).resultJson) as { fds: number[]; uid: number; sid: number; pid: number; umask: number };
    // 0-3: stdin, stdout, stderr, the channel; the one more is the listing's own.
    expect(got.fds.filter((fd) => fd > 3).length).toBeLessThanOrEqual(1);
    expect(got.sid).toBe(got.pid);
    expect(got.umask).toBe(0o077);
    if (isRoot) expect(got.uid).toBe(interpreter.sandbox.uid);
    expect(lines).toContainEqual({ level: 'INFO', text: 'to stdout' });
    await interpreter.sandbox.close();
  }, 30_000);

  it('removes the socket directories of runners that died', async () => {
    // A runner process that is gone (a child that exited) left its directory.
    const dead = spawnSync('true').pid;
    const left = fs.mkdtempSync(path.join(os.tmpdir(), `gef-fork-${dead}-`));
    const broken = new ForkServer({ python: '/nonexistent/python3', shim: fixture.shim, env, logger: createLogger('fork-server', 'silent') });
    await expect(broken.fork({ dir: fixture.tmp, env })).rejects.toThrow();
    expect(fs.existsSync(left)).toBe(false);
    // This runner's own is kept.
    expect(fs.existsSync(path.dirname(fixture.forkServer!.socketPath!))).toBe(true);
    await broken.stop();
  }, 30_000);

  it('refuses connections that do not name a child it forked', async () => {
    const interpreter = await forked();
    const socketPath = fixture.forkServer!.socketPath;
    expect(socketPath).toBeDefined();
    const closed = await new Promise<boolean>((resolve) => {
      const socket = net.connect(socketPath!, () => socket.write('0123456789abcdef0123456789abcdef 0\n'));
      const timer = setTimeout(() => {
        socket.destroy();
        resolve(false);
      }, 5000);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    expect(closed).toBe(true);
    // The real child is unaffected.
    const { outcome } = await runIn(interpreter, 'def run(params, logger):\n    return 7\n');
    expect(outcome).toEqual({ kind: 'result', resultJson: '7' });
    await interpreter.sandbox.close();
  }, 30_000);

  it('spawns the interpreter when the fork server cannot be had', async () => {
    const broken = new ForkServer({ python: '/nonexistent/python3', shim: fixture.shim, env, logger: createLogger('fork-server', 'silent') });
    const run = await fixture.sandbox.open('fallback');
    const interpreter = await PythonInterpreter.start({ sandbox: run, python, shim: fixture.shim, limits, env: { ...env, HOME: run.dir }, forkServer: broken });
    expect(interpreter.forked).toBe(false);
    expect(await interpreter.ready).toBe(true);
    const { outcome } = await runIn(interpreter, 'def run(params, logger):\n    return "spawned"\n');
    expect(outcome).toEqual({ kind: 'result', resultJson: '"spawned"' });
    await run.close();
    await broken.stop();
  }, 30_000);

  it("outlives a stop signal to the runner's whole process group, and forks runs that do not ignore one", async () => {
    const interpreter = await forked();
    const server = fixture.forkServer!.pid!;
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.kill(server, signal);
    await new Promise((r) => setTimeout(r, 200));
    expect(stateOf(server)).not.toMatch(/^(gone|Z)$/);
    expect(fixture.forkServer!.pid).toBe(server);
    // The run's own stop (SIGTERM from the runner) and a terminal's signals still reach it.
    const ignored = BigInt(`0x${/SigIgn:\s*([0-9a-f]+)/.exec(fs.readFileSync(`/proc/${interpreter.pid}/status`, 'utf8'))![1]}`);
    for (const signal of [1, 2, 15]) expect([signal, (ignored >> BigInt(signal - 1)) & 1n]).toEqual([signal, 0n]);
    const { outcome } = await runIn(interpreter, 'def run(params, logger):\n    return "still"\n');
    expect(outcome).toEqual({ kind: 'result', resultJson: '"still"' });
    await interpreter.sandbox.close();
  });

  it('takes its interpreters with it when it dies, and is started again for the next one', async () => {
    const waiting = await forked();
    const running = await forked();
    fs.mkdirSync(path.join(running.sandbox.dir, 'src'), { mode: 0o755 });
    fs.writeFileSync(path.join(running.sandbox.dir, 'src', 'main.py'), 'import time\ndef run(params, logger):\n    logger.info("started")\n    time.sleep(60)\n', { mode: 0o644 });
    const lines: string[] = [];
    const run = running.run({ params: {}, env: { ...env, HOME: running.sandbox.dir }, limits, timeoutMs: 20_000, killGraceMs: 500, onLog: (_l, text) => lines.push(text), onProgress: () => undefined });
    for (let i = 0; i < 200 && !lines.includes('started'); i++) await new Promise((r) => setTimeout(r, 25));
    expect(lines).toContain('started');
    const before = fixture.forkServer!.pid!;
    process.kill(before, 'SIGKILL');
    expect(await waiting.exited).toEqual({ code: null, signal: 'SIGKILL' });
    // A run it took with it failed for the runner's reason (retried), not the script's.
    await expect(run.outcome).rejects.toThrow(/fork server ended/);
    await running.sandbox.close();
    await new Promise((r) => setTimeout(r, 200));
    // The child is dead (its parent-death signal): gone, or a zombie of whoever inherited it.
    expect(stateOf(waiting.pid!)).toMatch(/^(gone|Z)$/);
    await waiting.sandbox.close();
    const next = await forked();
    expect(fixture.forkServer!.pid).not.toBe(before);
    const { outcome } = await runIn(next, 'def run(params, logger):\n    return "again"\n');
    expect(outcome).toEqual({ kind: 'result', resultJson: '"again"' });
    await next.sandbox.close();
  }, 30_000);
});
