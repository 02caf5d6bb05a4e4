import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '@gef/common';
import { InterpreterPool } from '../src/runtimes/python/interpreter-pool';
import type { PythonInterpreter, PythonOutcome, ScriptLevel } from '../src/runtimes/python/run-python';
import { processesOf, type SandboxLimits } from '../src/sandbox/sandbox';
import { Fixture, isRoot, python } from './support/run-script-fixture';

const logger = createLogger('test', 'silent');
const start: SandboxLimits = { memoryBytes: 1024 ** 3, cpuSeconds: Infinity, processes: 64, openFiles: 256, fileBytes: 64 * 1024 ** 2 };
const baseEnv = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' };

async function until(check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Interpreters started ahead of their runs, with the real python3 in the sandbox (as
// unprivileged users when the tests run as root, as they do here).
describe.each([
  ['spawned', false],
  ['forked by the fork server', true],
])('the Python interpreter pool, interpreters %s', (_how, forked) => {
  let fixture: Fixture;
  let pool: InterpreterPool;

  beforeAll(async () => {
    fixture = await new Fixture(isRoot ? 'on' : 'off', forked).init();
  });
  afterEach(async () => {
    await pool?.stop();
  });
  afterAll(() => fixture.cleanup());

  function newPool(size = 2): InterpreterPool {
    pool = new InterpreterPool({ sandbox: fixture.sandbox, python, shim: fixture.shim, size, limits: start, env: baseEnv, ...(fixture.forkServer ? { forkServer: fixture.forkServer } : {}), logger });
    pool.start();
    return pool;
  }

  /** Takes a ready interpreter (waiting for the pool to have one). */
  async function takeReady(p: InterpreterPool, limits: SandboxLimits): Promise<PythonInterpreter> {
    let taken: PythonInterpreter | undefined;
    await until(() => (taken = p.take(limits)) !== undefined);
    expect(await taken!.ready).toBe(true);
    return taken!;
  }

  /** Runs a script in the interpreter (the files copied into its directory first). */
  async function runIn(interpreter: PythonInterpreter, main: string, limits: SandboxLimits, env: Record<string, string> = {}) {
    fs.mkdirSync(path.join(fixture.tmp, 'trees'), { recursive: true });
    const tree = fs.mkdtempSync(path.join(fixture.tmp, 'trees', 'tree-'));
    fs.mkdirSync(path.join(tree, 'src'));
    fs.writeFileSync(path.join(tree, 'src', 'main.py'), main);
    await interpreter.sandbox.populate(tree);
    const lines: { level: ScriptLevel; text: string }[] = [];
    const running = interpreter.run({
      params: { n: 1 },
      env: { EXECUTION_ID: 'e-1', ENV: 'test', API_TOKEN: 'the-run-token', PATH: '/usr/bin:/bin', HOME: interpreter.sandbox.dir, LANG: 'C.UTF-8', ...env },
      limits,
      timeoutMs: 20_000,
      killGraceMs: 500,
      onLog: (level, text) => lines.push({ level, text }),
      onProgress: () => undefined,
    });
    const outcome: PythonOutcome = await running.outcome;
    const result = outcome.kind === 'result' ? JSON.parse(outcome.resultJson) : undefined;
    return { outcome, result, lines };
  }

  it('keeps interpreters waiting in the sandbox and starts another for each one taken', async () => {
    const p = newPool(2);
    await until(() => p.size === 2);
    const first = await takeReady(p, { ...start, cpuSeconds: 30 });
    expect(first.idle).toBe(true);
    expect(first.forked).toBe(forked);
    await until(() => p.size === 2);
    if (isRoot) {
      expect(first.sandbox.uid).toBeGreaterThanOrEqual(910_000);
      expect(processesOf(first.sandbox.uid!)).not.toEqual([]);
    }
    const r = await runIn(first, 'def run(params, logger):\n    return params["n"] + 1\n', { ...start, cpuSeconds: 30 });
    expect(r.outcome).toEqual({ kind: 'result', resultJson: '2' });
    await first.sandbox.close();
  }, 60_000);

  it('runs exactly one job per interpreter', async () => {
    const p = newPool(1);
    const interpreter = await takeReady(p, { ...start, cpuSeconds: 30 });
    const r = await runIn(interpreter, 'def run(params, logger):\n    return "once"\n', { ...start, cpuSeconds: 30 });
    expect(r.result).toBe('once');
    expect(interpreter.idle).toBe(false);
    expect(() => interpreter.run({ params: {}, env: {}, limits: start, timeoutMs: 1000, killGraceMs: 100, onLog: () => undefined, onProgress: () => undefined })).toThrow(/had its job/);
    // The process is gone with its run.
    await interpreter.exited;
    await interpreter.sandbox.close();
    expect(fs.existsSync(interpreter.sandbox.dir)).toBe(false);
  }, 60_000);

  it('replaces an interpreter that dies while it waits, and never hands it out', async () => {
    const p = newPool(1);
    // The pool's waiting interpreter, killed while it waits.
    let waiting: PythonInterpreter | undefined;
    await until(() => {
      waiting = (p as unknown as { idle: PythonInterpreter[] }).idle[0];
      return waiting?.isReady === true;
    });
    const dir = waiting!.sandbox.dir;
    waiting!.discard();
    await waiting!.exited;
    // A new one takes its place; the dead one's directory is removed.
    await until(() => {
      const next = (p as unknown as { idle: PythonInterpreter[] }).idle[0];
      return next !== undefined && next !== waiting && next.isReady;
    });
    await until(() => !fs.existsSync(dir));
    const next = p.take({ ...start, cpuSeconds: 30 })!;
    expect(next).not.toBe(waiting);
    const r = await runIn(next, 'def run(params, logger):\n    return "alive"\n', { ...start, cpuSeconds: 30 });
    expect(r.result).toBe('alive');
    await next.sandbox.close();
  }, 60_000);

  it('applies the run\'s limits and environment; nothing of the runner\'s environment leaks', async () => {
    process.env['GEF_SECRET_FOR_TEST'] = 'must not leak';
    const p = newPool(1);
    delete process.env['GEF_SECRET_FOR_TEST'];
    const limits: SandboxLimits = { memoryBytes: 300 * 1024 ** 2, cpuSeconds: 7, processes: 32, openFiles: 128, fileBytes: 8 * 1024 ** 2 };
    const interpreter = await takeReady(p, limits);
    const main = [
      'import os, resource, sys',
      'def run(params, logger):',
      '    limits = {n: resource.getrlimit(getattr(resource, "RLIMIT_" + n)) for n in ("AS", "CPU", "NOFILE", "FSIZE", "NPROC", "CORE")}',
      '    try:',
      '        block = bytearray(400 * 1024 * 1024)',
      '        memory = "allocated"',
      '    except MemoryError:',
      '        memory = "MemoryError"',
      '    return {"limits": limits, "memory": memory, "env": dict(os.environ), "cwd": os.getcwd(), "uid": os.getuid(),',
      '            "initial_environ": open("/proc/self/environ", "rb").read().decode().split("\\0")}',
    ].join('\n');
    const r = await runIn(interpreter, main, limits);
    expect(r.outcome.kind).toBe('result');
    const got = r.result as { limits: Record<string, number[]>; memory: string; env: Record<string, string>; cwd: string; uid: number; initial_environ: string[] };
    expect(got.limits['AS']).toEqual([300 * 1024 ** 2, 300 * 1024 ** 2]);
    // The soft limit a second under the hard one: a spinning script gets SIGXCPU (named in its log) before SIGKILL.
    expect(got.limits['CPU']).toEqual([6, 7]);
    expect(got.limits['NOFILE']).toEqual([128, 128]);
    expect(got.limits['FSIZE']).toEqual([8 * 1024 ** 2, 8 * 1024 ** 2]);
    expect(got.limits['CORE']).toEqual([0, 0]);
    if (isRoot) {
      expect(got.limits['NPROC']).toEqual([32, 32]);
      expect(got.uid).toBe(interpreter.sandbox.uid);
    }
    expect(got.memory).toBe('MemoryError');
    expect(Object.keys(got.env).sort()).toEqual(['API_TOKEN', 'ENV', 'EXECUTION_ID', 'HOME', 'LANG', 'PATH']);
    expect(got.env['API_TOKEN']).toBe('the-run-token');
    expect(got.cwd).toBe(interpreter.sandbox.dir);
    // What the process started with: PATH, the locale and its home, nothing else (a forked
    // one: the fork server's, PATH and the locale).
    const initial = got.initial_environ.filter(Boolean).map((kv) => kv.split('=')[0]).sort();
    expect(initial).toEqual(forked ? ['LANG', 'PATH'] : ['HOME', 'LANG', 'PATH']);
    await interpreter.sandbox.close();
  }, 60_000);

  it('starts waiting interpreters at a low priority and runs the script, and what it starts, at the normal one', async () => {
    const p = newPool(1);
    const interpreter = await takeReady(p, { ...start, cpuSeconds: 30 });
    // The runner may give the priority back only as root; elsewhere interpreters start at the normal one.
    expect(os.getPriority(interpreter.pid!)).toBe(isRoot ? 10 : 0);
    const main = [
      'import os, subprocess',
      'def run(params, logger):',
      '    child = subprocess.run(["sh", "-c", "cut -d\\" \\" -f19 /proc/self/stat"], capture_output=True, text=True).stdout.strip()',
      // Each thread has a priority of its own: the shim's log thread, started while it waited, too.
      '    threads = sorted(set(int(open("/proc/self/task/%s/stat" % t).read().rsplit(")", 1)[1].split()[16]) for t in os.listdir("/proc/self/task")))',
      '    return {"own": os.getpriority(os.PRIO_PROCESS, 0), "child": int(child), "threads": threads}',
    ].join('\n');
    const r = await runIn(interpreter, main, { ...start, cpuSeconds: 30 });
    expect(r.result).toEqual({ own: 0, child: 0, threads: [0] });
    await interpreter.sandbox.close();
  }, 60_000);

  it('hands out nothing for a run allowed more than its interpreters were started with', async () => {
    const p = newPool(1);
    await until(() => p.size === 1);
    expect(p.take({ ...start, memoryBytes: start.memoryBytes * 2, cpuSeconds: 30 })).toBeUndefined();
    expect(p.take({ ...start, openFiles: start.openFiles + 1, cpuSeconds: 30 })).toBeUndefined();
  }, 60_000);

  it('ends every waiting interpreter, its uid and directory, when stopped', async () => {
    const p = newPool(2);
    await until(() => (p as unknown as { idle: PythonInterpreter[] }).idle.filter((i) => i.isReady).length === 2);
    const waiting = [...(p as unknown as { idle: PythonInterpreter[] }).idle];
    await p.stop();
    for (const interpreter of waiting) {
      expect(fs.existsSync(interpreter.sandbox.dir)).toBe(false);
      if (interpreter.sandbox.uid !== undefined) expect(processesOf(interpreter.sandbox.uid)).toEqual([]);
    }
    expect(p.take({ ...start, cpuSeconds: 30 })).toBeUndefined();
  }, 60_000);
});
