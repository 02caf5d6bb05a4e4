import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { EnvironmentError } from '../src/environments/environment-error';
import { EnvironmentCache, environmentRecord } from '../src/environments/environment-cache';
import { ensureEnvironment, privatiseEnvironmentRecords, sweepUnfinishedEnvironments, type EnvironmentSettings } from '../src/environments/ensure-environment';
import { prepareRunnerDirs, type RunnerDirs } from '../src/sandbox/runner-dirs';
import { processesOf, Sandbox } from '../src/sandbox/sandbox';
import { isRoot } from './support/run-script-fixture';

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

  it("one request's cancel ends its own wait, not the build another waits for; the last one's cancel stops the build", async () => {
    const fresh = { ...settings, dataDir: fs.mkdtempSync(path.join(os.tmpdir(), 'gef-env-shared-')) };
    const cancelled = async (promise: Promise<unknown>) => {
      const err = await promise.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(EnvironmentError);
      expect((err as EnvironmentError).message).toBe('the build was cancelled');
      expect((err as EnvironmentError).retryable).toBe(true);
    };
    try {
      // The first request starts the build and is cancelled; the second waits on.
      const first = new AbortController();
      const building = ensureEnvironment(fresh, 'python3', '# shared\n', { signal: first.signal });
      let joined = false;
      const second = ensureEnvironment(fresh, 'python3', '', { onLine: (l) => (joined ||= /being prepared by another build/.test(l)) });
      for (let i = 0; i < 200 && !joined; i++) await new Promise((r) => setTimeout(r, 5));
      expect(joined).toBe(true);
      first.abort();
      await cancelled(building);
      const env = await second;
      expect(env.reused).toBe(true);
      expect(execFileSync(env.python, ['-c', 'print(1)']).toString().trim()).toBe('1');

      // Every request cancelled: the build stops, and leaves nothing behind.
      const other = '# only one\n';
      const a = new AbortController();
      const b = new AbortController();
      const one = ensureEnvironment(fresh, 'python3', `${other}\nsix==1.17.0\n`, { signal: a.signal });
      let waiting = false;
      const two = ensureEnvironment(fresh, 'python3', 'six==1.17.0', { signal: b.signal, onLine: (l) => (waiting ||= /being prepared by another build/.test(l)) });
      for (let i = 0; i < 200 && !waiting; i++) await new Promise((r) => setTimeout(r, 5));
      expect(waiting).toBe(true);
      a.abort();
      await cancelled(one);
      b.abort();
      await cancelled(two);
      for (let i = 0; i < 200 && fs.readdirSync(path.join(fresh.dataDir, 'environments')).length > 1; i++) await new Promise((r) => setTimeout(r, 50));
      expect(fs.readdirSync(path.join(fresh.dataDir, 'environments'))).toEqual([env.hash]);
    } finally {
      fs.rmSync(fresh.dataDir, { recursive: true, force: true });
    }
  }, 120_000);

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

  it('with a cache: records what an environment takes when it is built, reuses it while it is there, and builds it again once removed', async () => {
    const fresh = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-env-cached-'));
    try {
      const cache = new EnvironmentCache(path.join(fresh, 'environments'), { maxBytes: 1 << 40 });
      const cached = { ...settings, dataDir: fresh, cache };
      const first = await ensureEnvironment(cached, 'python3', '# cached\n');
      expect(first.reused).toBe(false);
      const record = JSON.parse(fs.readFileSync(path.join(first.path, environmentRecord), 'utf8')) as { bytes: number };
      expect(record.bytes).toBeGreaterThan(10_000);
      expect(cache.bytes).toBe(record.bytes);
      first.release();
      const again = await ensureEnvironment(cached, 'python3', '');
      expect(again).toMatchObject({ hash: first.hash, reused: true });
      again.release();
      // Removed (by another process sharing the directory, say): built again, not used half gone.
      fs.rmSync(first.path, { recursive: true });
      const lines: string[] = [];
      const rebuilt = await ensureEnvironment(cached, 'python3', '', { onLine: (l) => lines.push(l) });
      expect(rebuilt).toMatchObject({ hash: first.hash, reused: false });
      expect(lines).toContain(`preparing environment ${first.hash.slice(0, 12)} (0 requirements)`);
      expect(fs.existsSync(rebuilt.python)).toBe(true);
      rebuilt.release();
    } finally {
      fs.rmSync(fresh, { recursive: true, force: true });
    }
  }, 60_000);

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
    fs.writeFileSync(`${orphan}.pgid`, `${leftover.pid}\n`);
    // A process whose id a file names but which is not that step (an id reused since): left alone.
    const other = path.join(root, '.tmp-0def-4194305-other');
    fs.mkdirSync(other);
    fs.writeFileSync(`${other}.pgid`, `${left.pid}\n`);
    const [leftoverExit, leftExit] = [exited(leftover), exited(left)];
    expect(await sweepUnfinishedEnvironments(settings, 60 * 60 * 1000)).toBe(2);
    expect(await leftoverExit).toBe('SIGKILL');
    expect([orphan, other, `${orphan}.pgid`, `${other}.pgid`].map((p) => fs.existsSync(p))).toEqual([false, false, false, false]);
    // Still running: it ends by the signal sent now, not by a SIGKILL from the sweep.
    left.kill('SIGTERM');
    expect(await leftExit).toBe('SIGTERM');
  });

  it("makes older environments' records the runner's alone, never through a link", async () => {
    const env = await ensureEnvironment(settings, 'python3', '# older\n');
    const record = path.join(env.path, '.gef-environment.json');
    fs.chmodSync(record, 0o644);
    const outside = path.join(dataDir, 'outside');
    fs.writeFileSync(outside, 'x', { mode: 0o644 });
    fs.chmodSync(outside, 0o644);
    fs.symlinkSync(outside, path.join(env.path, 'gef-requirements.txt'));
    expect(await privatiseEnvironmentRecords(settings)).toBe(isRoot ? 1 : 0);
    if (isRoot) expect(fs.statSync(record).mode & 0o777).toBe(0o600);
    expect(fs.statSync(outside).mode & 0o777).toBe(0o644);
    fs.rmSync(path.join(env.path, 'gef-requirements.txt'));
  });

  it('leaves environments readable by other users (scripts run unprivileged)', () => {
    for (const name of entries()) expect(fs.statSync(path.join(dataDir, 'environments', name)).mode & 0o777).toBe(0o755);
  });
});

// Builds run the build code of what a script requires: as a user of their own, never root.
(isRoot ? describe : describe.skip)('ensureEnvironment in the sandbox (root only)', () => {
  const uidBase = 930_000;
  let tmp: string;
  let settings: EnvironmentSettings;
  let dirs: RunnerDirs;
  let uidLog: string;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-env-sandboxed-'));
    fs.chmodSync(tmp, 0o711);
    dirs = await prepareRunnerDirs({ dataDir: tmp, sandboxed: true });
    // Every Python the build starts records its uid, and leaves a process behind.
    const hooks = path.join(tmp, 'hooks');
    fs.mkdirSync(hooks, { mode: 0o755 });
    fs.writeFileSync(
      path.join(hooks, 'sitecustomize.py'),
      [
        'import os, sys, time',
        'log = os.environ.get("GEF_TEST_UID_LOG")',
        'if log:',
        '    with open(log, "a") as f:',
        '        f.write("%d\\n" % os.getuid())',
        '    if os.fork() == 0:',
        '        os.setsid()',
        '        null = os.open(os.devnull, os.O_RDWR)',
        '        for fd in (0, 1, 2):',
        '            os.dup2(null, fd)',
        '        time.sleep(600)',
        '        os._exit(0)',
      ].join('\n'),
      { mode: 0o644 },
    );
    uidLog = path.join(tmp, 'uids.log');
    fs.writeFileSync(uidLog, '', { mode: 0o666 });
    fs.chmodSync(uidLog, 0o666);
    const config = loadConfig({ ...process.env, GEF_DATA_DIR: tmp });
    settings = {
      dataDir: dirs.root,
      python: config.PYTHON,
      processEnv: { ...config.toolEnv, PYTHONPATH: hooks, GEF_TEST_UID_LOG: uidLog },
      pipTimeoutMs: 300_000,
      builds: {
        sandbox: new Sandbox({ mode: 'on', prlimit: true, uidBase, uidCount: 4, dirs }),
        limits: { memoryBytes: 4 * 1024 ** 3, cpuSeconds: Infinity, processes: 256, openFiles: 1024, fileBytes: 1024 ** 3 },
      },
    };
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  /** Every entry of a tree, symbolic links as themselves. */
  const walk = (dir: string): string[] => [dir, ...fs.readdirSync(dir).flatMap((name) => (fs.lstatSync(path.join(dir, name)).isDirectory() ? walk(path.join(dir, name)) : [path.join(dir, name)]))];

  it("runs venv and pip as a build user, then makes the environment root's, readable by all, writable by none", async () => {
    const env = await ensureEnvironment(settings, 'python3', 'six==1.17.0\n');
    const uids = fs.readFileSync(uidLog, 'utf8').trim().split('\n').map(Number);
    // venv, pip and what pip started.
    expect(uids.length).toBeGreaterThanOrEqual(2);
    for (const uid of uids) expect(uid >= uidBase && uid < uidBase + 4).toBe(true);
    // Nothing the build left running outlives it, and its uid is free again.
    for (const uid of new Set(uids)) expect(processesOf(uid)).toEqual([]);
    expect(fs.readdirSync(dirs.uids)).toEqual([]);
    for (const entry of walk(env.path)) {
      const stat = fs.lstatSync(entry);
      expect({ entry, uid: stat.uid }).toEqual({ entry, uid: 0 });
      if (!stat.isSymbolicLink()) expect({ entry, bits: stat.mode & 0o7022 }).toEqual({ entry, bits: 0 });
    }
    // pip's requirements file stayed out of the tree (in the build's home); the runner's record is its alone.
    expect(fs.existsSync(path.join(env.path, 'gef-requirements.txt'))).toBe(false);
    expect(fs.statSync(path.join(env.path, '.gef-environment.json')).mode & 0o777).toBe(0o600);
    // Other environments cannot be listed; this one is usable by a script's user.
    expect(fs.statSync(path.join(dirs.root, 'environments')).mode & 0o777).toBe(0o711);
    const asScript = execFileSync('setpriv', ['--reuid=930100', '--regid=930100', '--clear-groups', env.python, '-c', 'import six; print(six.__version__)'], { env: { PATH: '/usr/bin:/bin' } });
    expect(asScript.toString().trim()).toBe('1.17.0');
  }, 300_000);

  it('stops a build that puts more than its disk quota on disk, for good, leaving nothing behind', async () => {
    // Every Python of the build writes 16 MiB into its home, then lingers.
    const hooks = path.join(tmp, 'filling-hooks');
    fs.mkdirSync(hooks, { mode: 0o755 });
    fs.writeFileSync(
      path.join(hooks, 'sitecustomize.py'),
      ['import os, time', 'with open(os.path.join(os.environ["HOME"], "fill-%d" % os.getpid()), "wb") as f:', '    f.write(b"x" * (16 * 1024 * 1024))', 'time.sleep(20)'].join('\n'),
      { mode: 0o644 },
    );
    const filling: EnvironmentSettings = {
      ...settings,
      processEnv: { ...settings.processEnv, PYTHONPATH: hooks, GEF_TEST_UID_LOG: '' },
      builds: { ...settings.builds!, disk: { maxBytes: 8 * 1024 ** 2, checkMs: 100 } },
    };
    const err = await ensureEnvironment(filling, 'python3', '# fills the disk\n').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnvironmentError);
    expect(err).toMatchObject({ retryable: false, message: expect.stringMatching(/^the build put more than its disk quota of 8 MiB on disk/) });
    expect(fs.readdirSync(path.join(dirs.root, 'environments')).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    expect(fs.readdirSync(dirs.uids)).toEqual([]);
  }, 120_000);

  it('writes its record anew, never through a link or a FIFO the build left at its name', async () => {
    // Files of root's that a build must not reach through the runner.
    const victim = path.join(tmp, 'victim');
    fs.writeFileSync(victim, 'untouched\n', { mode: 0o644 });
    fs.chmodSync(victim, 0o644);
    const hooks = path.join(tmp, 'hostile-hooks');
    fs.mkdirSync(hooks, { mode: 0o755 });
    fs.writeFileSync(
      path.join(hooks, 'sitecustomize.py'),
      [
        'import os',
        'args = open("/proc/self/cmdline", "rb").read().split(b"\\0")',
        'for a in args:',
        '    d = a.decode(errors="replace")',
        '    if "/environments/.tmp-" in d and os.path.isdir(d):',
        '        for name, how in ((".gef-environment.json", "link"), ("gef-requirements.txt", "link"), (".gef-build-pgid", "link"), ("fifo-name", "fifo")):',
        '            p = os.path.join(d, name)',
        '            if os.path.lexists(p):',
        '                continue',
        `            if how == "link": os.symlink(${JSON.stringify(victim)}, p)`,
        '            else: os.mkfifo(p)',
      ].join('\n'),
      { mode: 0o644 },
    );
    const hostile = { ...settings, processEnv: { ...settings.processEnv, PYTHONPATH: hooks, GEF_TEST_UID_LOG: '' } };
    const env = await ensureEnvironment(hostile, 'python3', '# a hostile build\n');
    expect(fs.readFileSync(victim, 'utf8')).toBe('untouched\n');
    expect(fs.statSync(victim).mode & 0o777).toBe(0o644);
    const record = fs.lstatSync(path.join(env.path, '.gef-environment.json'));
    expect({ file: record.isFile(), uid: record.uid, mode: record.mode & 0o777 }).toEqual({ file: true, uid: 0, mode: 0o600 });
    expect(JSON.parse(fs.readFileSync(path.join(env.path, '.gef-environment.json'), 'utf8'))).toMatchObject({ hash: env.hash });
  }, 300_000);
});
