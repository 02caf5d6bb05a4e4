import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EnvironmentCache, environmentRecord } from '../src/environments/environment-cache';

/** A complete environment as the cache sees it: its record, an interpreter, and `bytes` of data. */
function fakeEnvironment(root: string, hash: string, bytes: number, record: Record<string, unknown> = {}): string {
  const dir = path.join(root, hash);
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'bin', 'python'), '');
  fs.writeFileSync(path.join(dir, 'data'), Buffer.alloc(bytes, 1));
  fs.writeFileSync(path.join(dir, environmentRecord), JSON.stringify({ hash, ...record }), { mode: 0o600 });
  return dir;
}

const hashes = { a: 'a'.repeat(64), b: 'b'.repeat(64), c: 'c'.repeat(64), d: 'd'.repeat(64) };
type Name = keyof typeof hashes;

describe('EnvironmentCache', () => {
  let root: string;
  const onDisk = () => (Object.keys(hashes) as Name[]).filter((n) => fs.existsSync(path.join(root, hashes[n])));

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'gef-env-cache-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('removes the least recently used environments past the budget, never one a run of this process uses', async () => {
    const cache = new EnvironmentCache(root, { maxBytes: 250_000 });
    for (const name of ['a', 'b', 'c'] as const) {
      fakeEnvironment(root, hashes[name], 100_000);
      cache.added(hashes[name], 100_000);
    }
    await cache.idle();
    expect(onDisk()).toEqual(['b', 'c']);
    // b in use by a run: when d comes, c goes instead.
    const running = (await cache.use(hashes.b))!;
    expect(running).toBeDefined();
    fakeEnvironment(root, hashes.d, 100_000);
    cache.added(hashes.d, 100_000);
    await cache.idle();
    expect(onDisk()).toEqual(['b', 'd']);
    // The run's mark is there while it runs, gone once it ends.
    expect(fs.readdirSync(path.join(root, '.uses', hashes.b))).toHaveLength(1);
    running.release();
    await new Promise((r) => setTimeout(r, 50));
    expect(fs.readdirSync(path.join(root, '.uses', hashes.b))).toEqual([]);
    // One removed is not used: a run builds it again.
    expect(await cache.use(hashes.a)).toBeUndefined();
    expect(fs.readdirSync(root).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });

  it("never removes an environment another runner process's run uses (a fresh mark), and removes it once the mark is stale", async () => {
    const cache = new EnvironmentCache(root, { maxBytes: 150_000, staleMs: 60_000 });
    fakeEnvironment(root, hashes.a, 100_000);
    cache.added(hashes.a, 100_000);
    // Another process's run of a: its mark, fresh.
    const mark = path.join(root, '.uses', hashes.a, '4194305-abcdef');
    fs.mkdirSync(path.dirname(mark), { recursive: true });
    fs.writeFileSync(mark, '');
    fakeEnvironment(root, hashes.b, 100_000);
    cache.added(hashes.b, 100_000);
    await cache.idle();
    expect(onDisk()).toEqual(['a', 'b']);
    // That process died: its mark is no longer renewed.
    const past = new Date(Date.now() - 120_000);
    fs.utimesSync(mark, past, past);
    fakeEnvironment(root, hashes.c, 100);
    cache.added(hashes.c, 100);
    await cache.idle();
    expect(onDisk()).toEqual(['b', 'c']);
  });

  it('renews the marks of its runs, so another process never takes them for a dead one', async () => {
    const cache = new EnvironmentCache(root, { maxBytes: 1 << 30, renewMs: 20 });
    fakeEnvironment(root, hashes.a, 10);
    const use = (await cache.use(hashes.a))!;
    const [name] = fs.readdirSync(path.join(root, '.uses', hashes.a));
    const mark = path.join(root, '.uses', hashes.a, name!);
    const past = new Date(Date.now() - 120_000);
    fs.utimesSync(mark, past, past);
    await new Promise((r) => setTimeout(r, 100));
    expect(Date.now() - fs.statSync(mark).mtimeMs).toBeLessThan(5_000);
    use.release();
  });

  it('makes environments/ enterable but not listable, its marks the runner\'s alone', async () => {
    const fresh = path.join(root, 'runner', 'environments');
    const cache = new EnvironmentCache(fresh, { maxBytes: 1 << 30 });
    expect(await cache.use(hashes.a)).toBeUndefined();
    expect(fs.statSync(fresh).mode & 0o777).toBe(0o711);
    expect(fs.statSync(path.join(fresh, '.uses')).mode & 0o777).toBe(0o700);
  });

  it('finds an environment another process removed gone, and forgets it', async () => {
    const cache = new EnvironmentCache(root, { maxBytes: 1 << 30 });
    fakeEnvironment(root, hashes.a, 1000);
    cache.added(hashes.a, 1000);
    fs.rmSync(path.join(root, hashes.a), { recursive: true });
    expect(await cache.use(hashes.a)).toBeUndefined();
    expect(cache.bytes).toBe(0);
  });

  it('counts at start the environments left before from their records (measuring and recording those without), removing the oldest past the budget', async () => {
    const dirs = {
      a: fakeEnvironment(root, hashes.a, 100_000, { bytes: 100_000 }),
      b: fakeEnvironment(root, hashes.b, 100_000),
      c: fakeEnvironment(root, hashes.c, 100_000, { bytes: 100_000 }),
    };
    (['a', 'b', 'c'] as const).forEach((name, i) => {
      const when = new Date(Date.now() - (3 - i) * 3600_000);
      fs.utimesSync(path.join(dirs[name], environmentRecord), when, when);
    });
    // Half made: not an environment.
    fs.mkdirSync(path.join(root, hashes.d));
    const cache = new EnvironmentCache(root, { maxBytes: 250_000 });
    expect(await cache.recover()).toEqual({ environments: 3, measured: 1 });
    expect(onDisk()).toEqual(['b', 'c', 'd']);
    const measured = JSON.parse(fs.readFileSync(path.join(dirs.b, environmentRecord), 'utf8')) as { hash: string; bytes: number };
    expect(measured.hash).toBe(hashes.b);
    expect(measured.bytes).toBeGreaterThanOrEqual(100_000);
    expect(fs.statSync(path.join(dirs.b, environmentRecord)).mode & 0o777).toBe(0o600);
    expect(cache.bytes).toBe(100_000 + measured.bytes);
  });
});
