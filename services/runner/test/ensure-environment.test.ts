import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { EnvironmentError } from '../src/environments/environment-error';
import { ensureEnvironment, sweepUnfinishedEnvironments, type EnvironmentSettings } from '../src/environments/ensure-environment';

// Real python3 and venv; the pip cases reach PyPI.
describe('ensureEnvironment', () => {
  let dataDir: string;
  let settings: EnvironmentSettings;

  beforeAll(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-env-'));
    const config = loadConfig({ ...process.env, GEF_DATA_DIR: dataDir });
    settings = { dataDir, python: config.PYTHON, processEnv: config.toolEnv, pipTimeoutMs: 300_000 };
  });
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  const entries = () => fs.readdirSync(path.join(dataDir, 'environments'));

  it('makes an environment without requirements, then reuses it', async () => {
    const lines: string[] = [];
    const first = await ensureEnvironment(settings, 'python3', '# nothing\n', { onLine: (l) => lines.push(l) });
    expect(first.reused).toBe(false);
    expect(first.path).toBe(path.join(dataDir, 'environments', first.hash));
    expect(execFileSync(first.python, ['-c', 'import sys; print(sys.prefix)']).toString().trim()).toBe(first.path);
    expect(lines.some((l) => l.includes('no requirements'))).toBe(true);

    const started = Date.now();
    const again = await ensureEnvironment(settings, 'python3', '');
    expect(again).toMatchObject({ hash: first.hash, reused: true });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(entries().filter((e) => e.startsWith('.tmp-'))).toEqual([]);
  }, 60_000);

  it('builds a hash once when asked twice at once', async () => {
    const fresh = { ...settings, dataDir: fs.mkdtempSync(path.join(os.tmpdir(), 'gef-env-twins-')) };
    try {
      const [a, b] = await Promise.all([ensureEnvironment(fresh, 'python3', '# twins\n\n'), ensureEnvironment(fresh, 'python3', '   \n')]);
      expect(a.hash).toBe(b.hash);
      expect([a.reused, b.reused].sort()).toEqual([false, true]);
      expect(fs.readdirSync(path.join(fresh.dataDir, 'environments'))).toEqual([a.hash]);
    } finally {
      fs.rmSync(fresh.dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('installs a requirement from PyPI, importable from the renamed environment', async () => {
    const lines: string[] = [];
    const env = await ensureEnvironment(settings, 'python3', 'six==1.17.0\n', { onLine: (l) => lines.push(l) });
    expect(env.reused).toBe(false);
    expect(execFileSync(env.python, ['-c', 'import six; print(six.__version__)']).toString().trim()).toBe('1.17.0');
    expect(lines.some((l) => /Successfully installed six/.test(l))).toBe(true);
    const same = await ensureEnvironment(settings, 'python3', '# same, differently written\nSix == 1.17.0\n');
    expect(same).toMatchObject({ hash: env.hash, reused: true });
  }, 300_000);

  it('fails, not retryable, naming a requirement that does not exist, and leaves nothing behind', async () => {
    const before = entries();
    let caught: unknown;
    try {
      await ensureEnvironment(settings, 'python3', 'no-such-package-gef-test-4c1d==9.9.9\n');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(EnvironmentError);
    expect((caught as EnvironmentError).retryable).toBe(false);
    expect((caught as Error).message).toMatch(/no-such-package-gef-test-4c1d/);
    expect(entries()).toEqual(before);
  }, 300_000);

  it('refuses unknown runtimes and pip options without building', async () => {
    await expect(ensureEnvironment(settings, 'R', '')).rejects.toThrow(/unsupported runtime/);
    await expect(ensureEnvironment(settings, 'python3', '-r other.txt')).rejects.toThrow(/pip options/);
  });

  it('sweeps half-built environments that are old or whose runner is gone, only', async () => {
    const root = path.join(dataDir, 'environments');
    const old = path.join(root, `.tmp-0abc-${process.pid}-old`);
    fs.mkdirSync(old);
    const past = new Date(Date.now() - 3 * 60 * 60 * 1000);
    fs.utimesSync(old, past, past);
    const mine = path.join(root, `.tmp-0abc-${process.pid}-new`);
    fs.mkdirSync(mine);
    // A process id that is not running (the largest pid Linux allows, plus one).
    const orphan = path.join(root, '.tmp-0abc-4194305-new');
    fs.mkdirSync(orphan);
    expect(await sweepUnfinishedEnvironments(settings, 60 * 60 * 1000)).toBe(2);
    expect([fs.existsSync(old), fs.existsSync(mine), fs.existsSync(orphan)]).toEqual([false, true, false]);
    fs.rmSync(mine, { recursive: true });
  });

  it('stops the venv or pip a killed runner left running in a half-built environment, and nothing else', async () => {
    const root = path.join(dataDir, 'environments');
    const exited = (child: ChildProcess) => new Promise<string | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    // A leftover step: its process group's leader names the directory, as venv and pip do.
    const orphan = path.join(root, '.tmp-0def-4194305-left');
    fs.mkdirSync(orphan);
    const sleeper = (...args: string[]) => spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600000)', ...args], { detached: true, stdio: 'ignore' });
    const leftover = sleeper(orphan);
    const left = sleeper();
    fs.writeFileSync(path.join(orphan, '.gef-build-pgid'), `${leftover.pid}\n`);
    // A process whose id a file names but which is not that step (an id reused since): left alone.
    const other = path.join(root, '.tmp-0def-4194305-other');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, '.gef-build-pgid'), `${left.pid}\n`);
    const [leftoverExit, leftExit] = [exited(leftover), exited(left)];
    expect(await sweepUnfinishedEnvironments(settings, 60 * 60 * 1000)).toBe(2);
    expect(await leftoverExit).toBe('SIGKILL');
    expect([fs.existsSync(orphan), fs.existsSync(other)]).toEqual([false, false]);
    // Still running: it ends by the signal sent now, not by a SIGKILL from the sweep.
    left.kill('SIGTERM');
    expect(await leftExit).toBe('SIGTERM');
  });

  it('leaves environments readable by other users (scripts run unprivileged)', () => {
    for (const name of entries()) expect(fs.statSync(path.join(dataDir, 'environments', name)).mode & 0o777).toBe(0o755);
  });
});
