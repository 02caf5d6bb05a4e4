import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '@gef/common';
import { ForkServer } from '../../src/runtimes/python/fork-server';
import { PythonInterpreter, type PythonJob, type PythonOutcome, type ScriptLevel } from '../../src/runtimes/python/run-python';
import { privateProcTools, type PrivateProcTools } from '../../src/sandbox/private-proc';
import { installShim, prepareRunnerDirs, type RunnerDirs } from '../../src/sandbox/runner-dirs';
import { Sandbox, type SandboxLimits } from '../../src/sandbox/sandbox';

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
export const python = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** A tar.gz with the given files (paths relative to the archive root). */
export function makeArchive(dir: string, files: Record<string, string>): string {
  const src = fs.mkdtempSync(path.join(dir, 'archive-'));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(src, name)), { recursive: true });
    fs.writeFileSync(path.join(src, name), text);
  }
  const file = `${src}.tar.gz`;
  execFileSync('tar', ['-czf', file, '-C', src, '.']);
  return file;
}

export interface ScriptRun {
  outcome: PythonOutcome;
  lines: { level: ScriptLevel; text: string }[];
  progress: number[];
  dir: string;
  uid: number | undefined;
  /** The interpreter was forked by the fork server. */
  forked: boolean;
}

/**
 * The uids of this Jest worker's fixtures: 50 of their own, so a run ending in one worker
 * (which kills every process of its uid) never meets another worker's run on the same uid.
 */
const fixtureUidBase = () => 910_000 + 50 * Number(process.env['JEST_WORKER_ID'] ?? 0);

/** A sandbox over temporary runner directories. */
export class Fixture {
  readonly tmp: string;
  dirs!: RunnerDirs;
  sandbox!: Sandbox;
  shim!: string;
  /** Set with `forked`: interpreters come from a fork server, else each is spawned. */
  forkServer: ForkServer | undefined;
  /** Runs see only their own processes in /proc (sandbox/private-proc.ts). */
  privateProc: PrivateProcTools | undefined;

  constructor(
    readonly mode: 'on' | 'off',
    private readonly forked = false,
  ) {
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-runner-test-'));
  }

  async init(): Promise<this> {
    // A directory scripts' users can reach (mkdtemp makes 0700 ones).
    fs.chmodSync(this.tmp, 0o711);
    this.dirs = await prepareRunnerDirs({ dataDir: this.tmp, sandboxed: this.mode === 'on' });
    // A /proc of each run's own where this machine allows it, as the runner decides at start.
    this.privateProc = this.mode === 'on' ? await privateProcTools() : undefined;
    this.sandbox = new Sandbox({ mode: this.mode, prlimit: true, ...(this.privateProc ? { privateProc: this.privateProc } : {}), uidBase: fixtureUidBase(), uidCount: 50, dirs: this.dirs });
    this.shim = await installShim(this.dirs, path.resolve(__dirname, '../../src/runtimes/python/gef_runtime.py'));
    if (this.forked) this.forkServer = new ForkServer({ python, shim: this.shim, env: { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' }, logger: createLogger('fork-server', 'silent') });
    return this;
  }

  limits(over: Partial<SandboxLimits> = {}): SandboxLimits {
    return { memoryBytes: 1024 ** 3, cpuSeconds: 60, processes: 64, openFiles: 256, fileBytes: 64 * 1024 ** 2, ...over };
  }

  /** Extracts the files and runs src/main.py through the shim. */
  async run(
    files: Record<string, string>,
    options: {
      params?: Record<string, unknown>;
      timeoutMs?: number;
      env?: Record<string, string>;
      stopAfterMs?: number;
      killGraceMs?: number;
      limits?: Partial<SandboxLimits>;
      /** Where the lines go (else they are kept in the result), and the job's backpressure. */
      job?: Partial<Pick<PythonJob, 'onLog' | 'backpressure'>>;
    } = {},
  ): Promise<ScriptRun> {
    const archive = makeArchive(this.tmp, files);
    const run = await this.sandbox.open('test');
    const lines: ScriptRun['lines'] = [];
    const progress: number[] = [];
    try {
      const limits = this.limits(options.limits);
      await run.extract(archive, limits);
      const interpreter = await PythonInterpreter.start({
        sandbox: run,
        python,
        shim: this.shim,
        limits,
        env: { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8', HOME: run.dir },
        ...(this.forkServer ? { forkServer: this.forkServer } : {}),
      });
      const running = interpreter.run({
        params: options.params ?? {},
        env: {
          EXECUTION_ID: '00000000-0000-4000-8000-000000000001',
          ENV: 'test',
          API_URL: 'http://127.0.0.1:1',
          API_TOKEN: 'token-for-the-test',
          PATH: '/usr/local/bin:/usr/bin:/bin',
          HOME: run.dir,
          LANG: 'C.UTF-8',
          ...options.env,
        },
        limits,
        timeoutMs: options.timeoutMs ?? 30_000,
        killGraceMs: options.killGraceMs ?? 1000,
        onLog: (level, text) => lines.push({ level, text }),
        onProgress: (p) => progress.push(p),
        ...options.job,
      });
      if (options.stopAfterMs !== undefined) setTimeout(() => running.stop('cancel'), options.stopAfterMs);
      const outcome = await running.outcome;
      return { outcome, lines, progress, dir: run.dir, uid: run.uid, forked: interpreter.forked };
    } finally {
      await run.close();
    }
  }

  async cleanup(): Promise<void> {
    await this.forkServer?.stop();
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}
