import fs from 'node:fs/promises';
import path from 'node:path';
import { runStreaming } from '../../process/run-streaming';
import { EnvironmentError } from '../../environments/environment-error';
import { pipFailure } from './pip-failure';

export interface PythonBuild {
  /** The interpreter environments are made from. */
  python: string;
  /** The environment of pip and venv (PATH, HOME, proxies, PIP_*). */
  env: Record<string, string>;
  pipTimeoutMs: number;
  /** pip's download cache; none when absent (a build in the sandbox shares nothing with others). */
  pipCacheDir?: string;
  /**
   * Where pip's requirements file is written (by the runner, before pip runs); default
   * `gef-requirements.txt` in the environment. A build in the sandbox keeps it out of the
   * tree its user writes to.
   */
  requirementsFile?: string;
  /** The command line that runs a step (venv, pip) as the build's user, with its limits; as it is when absent. */
  wrap?: (command: string, args: string[]) => { command: string; args: string[] };
  onLine: (line: string) => void;
  /** Each step's process group as it starts (venv, then pip). */
  onProcess?: (pgid: number) => void;
  signal?: AbortSignal;
}

let basePipAvailable: Promise<boolean> | undefined;

/** Whether the base interpreter has pip (then `pip --python` fills a pip-less venv quickly). */
function hasBasePip(build: PythonBuild): Promise<boolean> {
  basePipAvailable ??= runStreaming(build.python, ['-m', 'pip', '--version'], { env: build.env, timeoutMs: 30_000 })
    .then((r) => r.code === 0)
    .catch(() => false);
  return basePipAvailable;
}

/** Creates a virtual environment in `dir` (empty or absent) and installs the requirements. */
export async function buildPythonEnvironment(dir: string, requirements: string[], build: PythonBuild): Promise<void> {
  const basePip = requirements.length > 0 && (await hasBasePip(build));
  const withPip = requirements.length > 0 && !basePip;
  const wrap = build.wrap ?? ((command: string, args: string[]) => ({ command, args }));
  build.onLine(`creating a virtual environment with ${build.python}`);
  const venvLine = wrap(build.python, ['-m', 'venv', ...(withPip ? [] : ['--without-pip']), dir]);
  const venv = await runStreaming(venvLine.command, venvLine.args, {
    env: build.env,
    timeoutMs: 120_000,
    onLine: build.onLine,
    ...(build.onProcess ? { onSpawn: build.onProcess } : {}),
    ...(build.signal ? { signal: build.signal } : {}),
  });
  if (venv.code !== 0) {
    // Stopped (the build cancelled, its runner stopping) or too slow: worth another attempt.
    throw new EnvironmentError(`could not create the virtual environment: ${venv.tail.at(-1) ?? `exit code ${venv.code}`}`, venv.aborted || venv.timedOut);
  }
  if (requirements.length === 0) {
    build.onLine('no requirements to install');
    return;
  }
  const file = build.requirementsFile ?? path.join(dir, 'gef-requirements.txt');
  // A new file (never one found there), readable by the build's user, which runs pip.
  await fs.writeFile(file, `${requirements.join('\n')}\n`, { mode: 0o644, flag: 'wx' });
  build.onLine(`installing ${requirements.length} requirement${requirements.length === 1 ? '' : 's'} with pip`);
  const pythonInEnv = path.join(dir, 'bin', 'python');
  const pipArgs = basePip ? ['-m', 'pip', '--python', pythonInEnv] : ['-m', 'pip'];
  const cache = build.pipCacheDir ? ['--cache-dir', build.pipCacheDir] : ['--no-cache-dir'];
  const pipLine = wrap(basePip ? build.python : pythonInEnv, [...pipArgs, 'install', '--no-input', '--disable-pip-version-check', '--progress-bar', 'off', ...cache, '-r', file]);
  const pip = await runStreaming(pipLine.command, pipLine.args, {
    env: build.env,
    timeoutMs: build.pipTimeoutMs,
    onLine: build.onLine,
    ...(build.onProcess ? { onSpawn: build.onProcess } : {}),
    ...(build.signal ? { signal: build.signal } : {}),
  });
  if (pip.aborted) throw new EnvironmentError('the build was cancelled', true);
  if (pip.timedOut) throw new EnvironmentError(`pip install took longer than ${Math.round(build.pipTimeoutMs / 1000)} s`, true);
  if (pip.code !== 0) throw pipFailure(pip.tail, pip.code);
}
