/**
 * The gateway's primary (src/cluster.ts) over fixture workers (test/cluster/): real
 * processes on a real port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { childrenOf, findFreePorts, processAlive } from '@gef/deploy';
import { workerCount } from '../src/cluster';

jest.setTimeout(60_000);

const primaryScript = path.join(__dirname, 'cluster', 'primary.ts');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The primary's workers (tsx's esbuild is a child of it too). */
const workersOf = (pid: number): number[] => childrenOf(pid, process.execPath);

async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve(check()).catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

interface Started {
  proc: ChildProcess;
  port: number;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function startPrimary(env: Record<string, string> = {}): Promise<Started> {
  const [port] = await findFreePorts(1);
  const proc = spawn(process.execPath, ['--import', 'tsx', primaryScript], {
    env: { ...process.env, PORT: String(port), ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  return { proc, port: port!, exit };
}

const running: Started[] = [];
afterEach(() => {
  for (const s of running.splice(0)) {
    try {
      process.kill(-s.proc.pid!, 'SIGKILL');
    } catch {
      // Gone.
    }
  }
});

/** GET on a fresh connection (the primary hands each connection to the next worker). */
async function get(port: number, route = '/'): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${route}`, { headers: { Connection: 'close' }, signal: AbortSignal.timeout(5000) });
  return { status: res.status, text: await res.text() };
}

describe('the gateway’s primary', () => {
  it('counts one worker per core unless told', () => {
    expect(workerCount(0, 2)).toBe(2);
    expect(workerCount(1, 8)).toBe(1);
    expect(workerCount(0, 0)).toBe(1);
  });

  it('spreads connections over its workers, sums their metrics, replaces a killed worker, and ends with them on SIGTERM', async () => {
    const s = await startPrimary();
    running.push(s);
    let served = 0;
    const counted = async (route = '/') => {
      const res = await get(s.port, route);
      if (res.status === 200) served++;
      return res;
    };
    await until('both workers answering', async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) seen.add((await counted()).text);
      return seen.size === 2;
    });
    const pids = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const res = await counted();
      expect(res.status).toBe(200);
      pids.add(res.text);
    }
    expect(pids.size).toBe(2);
    expect(new Set(workersOf(s.proc.pid!).map(String))).toEqual(pids);

    // Every request any worker counted, this one included.
    const metrics = await counted('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(new RegExp(`^fixture_requests_total ${served}$`, 'm'));

    const [killed] = [...pids].map(Number);
    process.kill(killed!, 'SIGKILL');
    await until('a new worker in place of the killed one', () => {
      const now = workersOf(s.proc.pid!);
      return now.length === 2 && !now.includes(killed!);
    });
    await until('both workers answering again', async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 6; i++) seen.add((await get(s.port)).text);
      return seen.size === 2 && !seen.has(String(killed));
    });

    const workers = workersOf(s.proc.pid!);
    s.proc.kill('SIGTERM');
    expect(await s.exit).toEqual({ code: 0, signal: null });
    for (const pid of workers) expect(processAlive(pid)).toBe(false);
  });

  it('tells each worker once when the whole process group gets SIGTERM', async () => {
    const s = await startPrimary();
    running.push(s);
    await until('both workers answering', async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) seen.add((await get(s.port)).text);
      return seen.size === 2;
    });
    process.kill(-s.proc.pid!, 'SIGTERM');
    // The primary's shutdown message and the group's SIGTERM reach each worker in either
    // order; a worker that took them for two signals would end at once with code 1, and the
    // primary with 1.
    expect(await s.exit).toEqual({ code: 0, signal: null });
  });

  it("drops a key a worker changed in every worker's read cache before that worker answers", async () => {
    const s = await startPrimary();
    running.push(s);
    /** Each worker's cached value of `key`: read on fresh connections until both answered twice alike. */
    const cachedByWorker = async (key: string) =>
      until(`both workers' cached ${key}`, async () => {
        const seen = new Map<string, string[]>();
        for (let i = 0; i < 6; i++) {
          const [pid, value] = (await get(s.port, `/cached/${key}`)).text.split(' ');
          seen.set(pid!, [...(seen.get(pid!) ?? []), value!]);
        }
        const values = [...seen.values()];
        return seen.size === 2 && values.every((v) => v.length >= 2 && new Set(v).size === 1) ? new Map([...seen].map(([pid, v]) => [pid, v[0]!])) : undefined;
      });
    const before = await cachedByWorker('a');
    const other = await cachedByWorker('b');

    const res = await fetch(`http://127.0.0.1:${s.port}/drop/a`, { method: 'POST', headers: { Connection: 'close' }, signal: AbortSignal.timeout(5000) });
    expect(res.status).toBe(200);
    const dropper = await res.text();
    expect(before.has(dropper)).toBe(true);

    // Both workers load `a` afresh; `b` stays cached in both.
    const after = await cachedByWorker('a');
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [pid, value] of after) expect(value).not.toBe(before.get(pid));
    expect(await cachedByWorker('b')).toEqual(other);
    const metrics = await get(s.port, '/metrics');
    expect(metrics.text).toMatch(/^gef_gateway_cache_sibling_drops_total\{cache="fixture"\} 1$/m);
  });

  it('answers a change though another worker does not confirm the drop, and that worker drops it when it can', async () => {
    const s = await startPrimary();
    running.push(s);
    await until('both workers answering', async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) seen.add((await get(s.port, '/cached/a')).text.split(' ')[0]!);
      return seen.size === 2;
    });
    const [stopped] = workersOf(s.proc.pid!);
    const before = new Map<string, string>();
    await until("the stopped worker's cached a", async () => {
      const [pid, value] = (await get(s.port, '/cached/a')).text.split(' ');
      before.set(pid!, value!);
      return before.has(String(stopped)) || undefined;
    });
    process.kill(stopped!, 'SIGSTOP');
    try {
      // The primary hands a new connection to a worker only after that worker took the last
      // one: once one connection hangs on the stopped worker, the rest go to the other.
      await until('a connection held by the stopped worker', async () => {
        const hung = await fetch(`http://127.0.0.1:${s.port}/`, { headers: { Connection: 'close' }, signal: AbortSignal.timeout(500) }).then(
          () => false,
          () => true,
        );
        return hung || undefined;
      });
      const res = await fetch(`http://127.0.0.1:${s.port}/drop/a`, { method: 'POST', headers: { Connection: 'close' }, signal: AbortSignal.timeout(10_000) });
      expect(res.status).toBe(200);
      expect(await res.text()).not.toBe(String(stopped));
    } finally {
      process.kill(stopped!, 'SIGCONT');
    }
    // Woken, it drops `a` as it was asked, late.
    await until("the woken worker's fresh a", async () => {
      const [pid, value] = (await get(s.port, '/cached/a')).text.split(' ');
      return (pid === String(stopped) && value !== before.get(pid)) || undefined;
    });
  });

  it("counts a user's event-stream slots over all workers, and gives back those of a worker that ends", async () => {
    const s = await startPrimary();
    running.push(s);
    /** Opens a held stream on a fresh connection: its status, the worker's pid, and how to close it. */
    const hold = async (user: string) => {
      const abort = new AbortController();
      const res = await fetch(`http://127.0.0.1:${s.port}/hold/${user}`, { headers: { Connection: 'close' }, signal: abort.signal });
      if (res.status !== 200) return { status: res.status, pid: Number(await res.text()), close: () => undefined };
      const reader = res.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      return { status: 200, pid: Number(first.trim()), close: () => abort.abort() };
    };
    await until('both workers answering', async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) seen.add((await get(s.port)).text);
      return seen.size === 2;
    });
    // The primary hands connections to the workers in turn: both take part.
    const held = [await hold('u1'), await hold('u1'), await hold('u1')];
    expect(held.map((h) => h.status)).toEqual([200, 200, 200]);
    expect(new Set(held.map((h) => h.pid)).size).toBe(2);
    // The fourth is refused by whichever worker gets it, twice over (each worker once).
    const refused = [await hold('u1'), await hold('u1')];
    expect(refused.map((r) => r.status)).toEqual([429, 429]);
    expect(new Set(refused.map((r) => r.pid)).size).toBe(2);
    // Another user has slots of their own.
    const other = await hold('u2');
    expect(other.status).toBe(200);
    other.close();

    // A stream closed gives its slot back.
    held.shift()!.close();
    const again = await until('a slot given back', async () => {
      const h = await hold('u1');
      return h.status === 200 ? h : undefined;
    });
    held.push(again);
    expect((await hold('u1')).status).toBe(429);

    // A worker killed with slots held gives them back; its replacement serves.
    const victim = held[0]!.pid;
    const victimSlots = held.filter((h) => h.pid === victim).length;
    process.kill(victim, 'SIGKILL');
    const taken = await until('the killed worker’s slots given back', async () => {
      const h = await hold('u1');
      return h.status === 200 ? h : undefined;
    });
    const more = [taken];
    for (let i = 1; i < victimSlots; i++) more.push(await hold('u1'));
    expect(more.map((h) => h.status)).toEqual(Array(victimSlots).fill(200));
    expect((await hold('u1')).status).toBe(429);
    for (const h of [...held, ...more]) h.close();
  });

  it('ends with code 1, at once, when a worker fails before every worker listened', async () => {
    const s = await startPrimary({ FAIL_AT_START: '1', GRACE_MS: '30000' });
    running.push(s);
    const began = Date.now();
    expect(await s.exit).toEqual({ code: 1, signal: null });
    expect(Date.now() - began).toBeLessThan(20_000);
  });
});
