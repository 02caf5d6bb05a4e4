/**
 * CONTRACT §5 and issue 4, against the real stack: a runner killed (SIGKILL) while pip is
 * installing a requirement. Temporal notices the missing heartbeats and retries the
 * runner's activity; the runner started again takes it and the build reaches SUCCESS, with
 * a log that tells what happened, and nothing of the killed build keeps running.
 *
 * The requirement is a local package (an absolute file:/// URL, which the build's sandbox
 * user reads) whose build backend (PEP 517, no build dependencies, so no index is needed)
 * sleeps on its first build and writes its pid to a marker file: the test knows when pip is
 * busy with it and which process the killed build left.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { killPart, readStackInfo, runningParts, startPart } from '../harness/stack';
import { newUser } from './helpers/api';
import { buildLog, cliArchive, upload, waitForStatus } from './helpers/archives';

jest.setTimeout(300_000);

const backend = `
import base64, hashlib, os, time, zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
DIST = 'gef_slow_build-1.0'
METADATA = 'Metadata-Version: 2.1\\nName: gef-slow-build\\nVersion: 1.0\\n'
WHEEL = 'Wheel-Version: 1.0\\nGenerator: gef-e2e\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n'


def _first_build_sleeps():
    # The first build records its pid and sleeps (the runner is killed meanwhile); later ones go on.
    try:
        fd = os.open(os.path.join(HERE, 'markers', 'build-started'), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    time.sleep(900)


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _first_build_sleeps()
    info = os.path.join(metadata_directory, DIST + '.dist-info')
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(info, 'METADATA'), 'w') as f:
        f.write(METADATA)
    with open(os.path.join(info, 'WHEEL'), 'w') as f:
        f.write(WHEEL)
    return DIST + '.dist-info'


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _first_build_sleeps()
    files = {
        'gef_slow_build/__init__.py': 'BUILT = True\\n',
        DIST + '.dist-info/METADATA': METADATA,
        DIST + '.dist-info/WHEEL': WHEEL,
    }
    record = []
    name = DIST + '-py3-none-any.whl'
    with zipfile.ZipFile(os.path.join(wheel_directory, name), 'w') as whl:
        for path, text in files.items():
            data = text.encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
            record.append('%s,sha256=%s,%d' % (path, digest, len(data)))
            whl.writestr(path, data)
        record.append(DIST + '.dist-info/RECORD,,')
        whl.writestr(DIST + '.dist-info/RECORD', '\\n'.join(record) + '\\n')
    return name
`;

/**
 * A local package that takes its time to build the first time, where the build's sandbox
 * user can read it and write its marker: in a world-writable directory below one that is
 * not (what a build's user leaves in world-writable directories of /tmp goes with it).
 */
function slowPackage(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gef-slow-build-'));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'markers'), { mode: 0o777 });
  chmodSync(join(dir, 'markers'), 0o777);
  writeFileSync(join(dir, 'pyproject.toml'), '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n', { mode: 0o644 });
  writeFileSync(join(dir, 'backend.py'), backend, { mode: 0o644 });
  return dir;
}

/** Whether a process exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The runner's environments directory (services/runner/src/sandbox/runner-dirs.ts chooses it). */
function environmentsDirs(): string[] {
  const info = readStackInfo();
  const dataDir = resolve(info.env.runner['GEF_DATA_DIR'] ?? info.dataDir);
  const key = createHash('sha256').update(dataDir).digest('hex').slice(0, 12);
  return [join(dataDir, 'runner', 'environments'), join(tmpdir(), `gef-runner-${key}`, 'environments')].filter((d) => existsSync(d));
}

afterAll(async () => {
  // Leave the stack as it was for whatever runs next.
  if (!(await runningParts()).runner) await startPart('runner');
});

describe('a runner killed during a build', () => {
  it('the build finishes on retry', async () => {
    const owner = await newUser('crash-owner');
    const pkg = slowPackage();
    const name = `Runner Crash ${randomBytes(4).toString('hex')}`;
    const res = await upload(owner.token, cliArchive(name, { requirements: `gef-slow-build @ file://${pkg}\n` }), `${name}.tar.gz`);
    expect(res.status).toBe(200);
    const id = res.body.data.id as string;

    // pip is building the requirement: its backend has written its pid and sleeps.
    const orphan = await until('pip to build the requirement', () => {
      const marker = join(pkg, 'markers', 'build-started');
      return existsSync(marker) && readFileSync(marker, 'utf8') !== '' ? Number(readFileSync(marker, 'utf8')) : undefined;
    }, 120_000);
    expect(alive(orphan)).toBe(true);
    const before = await buildLog(owner.token, id);
    expect(before.some((l) => /installing 1 requirement with pip/.test(l.text))).toBe(true);
    expect((await waitForStatus(owner.token, id, ['BUILDING'], 10_000)).script.status).toBe('BUILDING');

    const killed = (await runningParts()).runner;
    await killPart('runner');
    expect((await runningParts()).runner).toBeUndefined();
    await startPart('runner');
    expect((await runningParts()).runner).not.toBe(killed);

    const built = await waitForStatus(owner.token, id, ['SUCCESS', 'FAIL'], 180_000);
    const log = await buildLog(owner.token, id);
    const texts = log.map((l) => l.text);
    expect({ status: built.script.status, log: texts }).toMatchObject({ status: 'SUCCESS' });

    // The log tells the story once, in order: started, the first attempt up to pip, the
    // second attempt, the environment, SUCCESS last.
    expect(log.map((l) => l.id)).toEqual([...log.map((l) => l.id)].sort((a, b) => a - b));
    expect(texts.every((t) => t.startsWith('Build: '))).toBe(true);
    expect(texts.filter((t) => /started for version 1/.test(t))).toHaveLength(1);
    expect(texts.filter((t) => /^Build: preparing the python3 environment on runner .*, attempt 2$/.test(t))).toHaveLength(1);
    const second = texts.findIndex((t) => /attempt 2$/.test(t));
    expect(texts.findIndex((t) => /installing 1 requirement with pip/.test(t))).toBeLessThan(second);
    expect(texts.slice(second).some((t) => /installing 1 requirement with pip/.test(t))).toBe(true);
    expect(texts.filter((t) => /SUCCESS|FAIL/.test(t))).toEqual([texts[texts.length - 1]]);
    expect(texts[texts.length - 1]).toMatch(/^Build: SUCCESS: version 1 is ready \(environment [0-9a-f]{12}\)$/);

    // The environment is there and its requirement importable.
    const prefix = /environment ([0-9a-f]{12})\)$/.exec(texts[texts.length - 1]!)![1]!;
    const dirs = environmentsDirs();
    const envDir = dirs.flatMap((d) => readdirSync(d).filter((n) => n.startsWith(prefix)).map((n) => join(d, n)))[0];
    expect(envDir).toBeDefined();
    const imported = spawnSync(join(envDir!, 'bin', 'python'), ['-c', 'import gef_slow_build; print(gef_slow_build.BUILT)'], { encoding: 'utf8' });
    expect(imported.stdout.trim()).toBe('True');

    // Nothing of the killed build goes on: its pip is stopped and its half-built directory gone.
    await until('the killed build\'s pip to stop', () => (alive(orphan) ? undefined : true), 10_000).catch(() => undefined);
    expect(alive(orphan)).toBe(false);
    expect(dirs.flatMap((d) => readdirSync(d).filter((n) => n.startsWith('.tmp-')))).toEqual([]);
    rmSync(pkg, { recursive: true, force: true });
  });
});
