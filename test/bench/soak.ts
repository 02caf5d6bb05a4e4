/**
 * `npm run bench:soak`: a soak of steady mixed load (the speed issue's "a 30-minute soak of
 * mixed load: no errors, memory of each process grows ≤ 10%"). Starts its own stack through
 * the launcher (fresh data dir, free ports), registers a few users, then for SOAK_MINUTES
 * (default 30) keeps up, at fixed rates (RATES below, open loop: a tick whose lane already
 * has its maximum in flight is skipped and counted, never queued):
 *
 *   logins        POST /auth of the users and the superadmin in turn (the fresh token
 *                 replaces the user's, so reads use ever new tokens as older runtimes do)
 *   reads         GET /api/v1/user/me, /script, /execution/<id> of a recent run (its
 *                 owner), /execution/user (a user's own), /execution (the superadmin's)
 *   runs          of a published CLI skeleton that logs a few lines and sends progress; one
 *                 in five of a variant that also POSTs a log line and PATCHes its progress
 *                 through the API with its own API_TOKEN; one in five followed through its
 *                 event stream (SSE) to the end, the others polled; every run must end
 *                 FINISHED with its results, and one in four has its log read back
 *   cancels       runs of a slow script, cancelled 0–3 s after their submission (PENDING,
 *                 READY or RUNNING by then): 202, then CANCELLED
 *   uploads       a new skeleton by one of the users, built to SUCCESS, then run to FINISHED
 *
 * Every response is checked: a 5xx, a network error or timeout, any status but the
 * expected one, a wrong body, or a run that is not terminal (FINISHED, or CANCELLED for the
 * cancelled ones) within RUN_DEADLINE_MS counts as an error, with its detail. A part of the
 * stack that exits counts too.
 *
 * Memory: every 10 s the resident memory (RSS) of each part of the stack with its children
 * (and their PSS, which counts pages shared between processes once: PostgreSQL's backends
 * all map its shared buffers), and of the runner's Node process alone (its children are
 * the Python interpreters of its pool and of the runs of the moment). The first six minutes
 * of load are a warm-up: in the first 30-minute run Keycloak's JVM grew its heap until
 * minute 6 and the runner settled by minute 5, then both stayed flat (a two-minute warm-up
 * flagged both, wrongly). The baseline is the median of the samples of the five minutes
 * after it, the end the median of the last five minutes', so neither a GC's dip (the
 * runner's RSS drops by 30 MiB for a minute every ten) nor a burst of run processes
 * decides anything. Growth = end / baseline − 1; over 10 % is flagged. A shorter soak
 * shrinks the warm-up to a third and the windows to a sixth of it.
 *
 * Prints JSON, then text, on stdout (progress every minute on stderr); exits 1 when there
 * were errors or a part grew past 10 %.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { freeStackPorts, type Stack } from '@gef/deploy';
import { cliMembers, tar } from '../e2e/helpers/archives';
import { builtSkeleton, streamUntilEnd } from './executions';
import { pssKib, rssKib, treePssKib, treeRssKib } from './memory';
import { upload } from './scripts';
import { ADMIN, login, startBenchStack, waitHealthy } from './stack';

const minutes = Number(process.env['SOAK_MINUTES'] ?? 30);
const durationMs = minutes * 60_000;
const warmupMs = Math.min(360_000, durationMs / 3);
const windowMs = Math.min(300_000, durationMs / 6);
const SAMPLE_MS = 10_000;
const USERS = 6;
const RUN_DEADLINE_MS = 180_000;
const REQUEST_TIMEOUT_MS = 60_000;
const GROWTH_LIMIT_PCT = 10;

/**
 * Operations started per second, per lane (times SOAK_LOAD, default 1), and how many of each
 * may be in flight. Chosen so that the shared 2-core machine, with other stacks beside it,
 * keeps up: at 2 runs/s and 2 logins/s (load average 20–25 from other jobs) runs piled up
 * behind each other and Keycloak's password hashing answered logins after 16 s or not at all.
 */
const scale = Number(process.env['SOAK_LOAD'] ?? 1);
const rate = (perSecond: number, maxInFlight: number) => ({ perSecond: perSecond * scale, maxInFlight: Math.ceil(maxInFlight * Math.max(1, scale)) });
const RATES = {
  login: rate(0.5, 4),
  me: rate(4, 16),
  scriptList: rate(0.5, 4),
  executionGet: rate(2, 8),
  executionList: rate(0.5, 4),
  adminList: rate(0.2, 2),
  run: rate(1, 40),
  cancel: rate(1 / 15, 8),
  upload: rate(1 / 60, 2),
};
type Lane = keyof typeof RATES;

const QUICK = [
  'def run(params, logger):',
  '    logger.info("soak run %s starting", params.get("n"))',
  '    for step in range(1, 4):',
  '        logger.send_progress(step * 25)',
  '        logger.info("step %d of 3", step)',
  '    return {"n": params.get("n"), "ok": True}',
  '',
].join('\n');

/** The quick run, plus a log line and a progress update sent through the REST API with the run's own token. */
const WITH_TOKEN = [
  'import json, os, urllib.request',
  '',
  'def call(method, path, body):',
  '    req = urllib.request.Request(os.environ["API_URL"] + path, method=method, data=json.dumps(body).encode(),',
  '        headers={"Content-Type": "application/json", "Authorization": "Bearer " + os.environ["API_TOKEN"]})',
  '    with urllib.request.urlopen(req, timeout=60) as r:',
  '        r.read()',
  '',
  'def run(params, logger):',
  '    me = "/api/v1/execution/" + os.environ["EXECUTION_ID"]',
  '    call("POST", me + "/log", {"text": "posted with API_TOKEN", "level": "INFO"})',
  '    call("PATCH", me, {"progress": 50.5})',
  '    logger.info("step 3 of 3")',
  '    return {"n": params.get("n"), "ok": True}',
  '',
].join('\n');

const SLOW = ['import time', '', 'def run(params, logger):', '    for i in range(600):', '        logger.send_progress(i / 6)', '        time.sleep(0.2)', '    return "not cancelled"', ''].join('\n');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const percentile = (sorted: number[], p: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!);
const median = (values: number[]) => percentile([...values].sort((a, b) => a - b), 0.5);
const round1 = (n: number) => Math.round(n * 10) / 10;

interface Account {
  email: string;
  password: string;
  token: string;
}

interface KindStats {
  ok: number;
  errors: number;
  latencies: number[];
}

interface SoakError {
  atSeconds: number;
  kind: string;
  detail: string;
}

/** Every request of the soak, checked and counted. */
class Checked {
  readonly kinds = new Map<string, KindStats>();
  readonly errors: SoakError[] = [];
  errorCount = 0;
  private readonly began = performance.now();

  constructor(private readonly api: string) {}

  private stats(kind: string): KindStats {
    let s = this.kinds.get(kind);
    if (!s) this.kinds.set(kind, (s = { ok: 0, errors: 0, latencies: [] }));
    return s;
  }

  fail(kind: string, detail: string): void {
    this.stats(kind).errors++;
    this.errorCount++;
    // Every error is counted; the first 200 are kept with their detail.
    if (this.errors.length < 200) this.errors.push({ atSeconds: Math.round((performance.now() - this.began) / 1000), kind, detail: detail.slice(0, 600) });
  }

  /** One request; its parsed body when the status is the expected one, else undefined (an error). */
  async call(kind: string, method: string, path: string, options: { token?: string; body?: unknown; expect?: number } = {}): Promise<any> {
    const began = performance.now();
    try {
      const res = await fetch(`${this.api}${path}`, {
        method,
        headers: { ...(options.token ? { Authorization: `Bearer ${options.token}` } : {}), ...(options.body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const text = await res.text();
      if (res.status !== (options.expect ?? 200)) {
        this.fail(kind, `${method} ${path}: HTTP ${res.status} ${text.slice(0, 300)}`);
        return undefined;
      }
      const s = this.stats(kind);
      s.ok++;
      s.latencies.push(performance.now() - began);
      return text === '' ? {} : JSON.parse(text);
    } catch (err) {
      this.fail(kind, `${method} ${path}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
      return undefined;
    }
  }

  /** A check of a body that came back with the right status. */
  expect(kind: string, ok: boolean, detail: () => string): boolean {
    if (!ok) this.fail(kind, detail());
    return ok;
  }
}

/**
 * Starts `op` `perSecond` times a second until `endAt` (skipping a tick, and counting it,
 * when `maxInFlight` are still going), then waits for those in flight.
 */
async function lane(perSecond: number, maxInFlight: number, endAt: number, onSkip: () => void, op: (i: number) => Promise<void>): Promise<number> {
  const interval = 1000 / perSecond;
  const running = new Set<Promise<void>>();
  let i = 0;
  for (let next = performance.now() + Math.random() * Math.min(interval, 1000); ; next += interval) {
    await sleep(Math.min(next, endAt) - performance.now());
    if (performance.now() >= endAt) break;
    if (running.size >= maxInFlight) {
      onSkip();
      continue;
    }
    const p: Promise<void> = op(i++).finally(() => running.delete(p));
    running.add(p);
  }
  await Promise.all(running);
  return i;
}

interface MemorySample {
  atMs: number;
  load1: number;
  /** Per part: RSS and PSS of the tree, KiB. */
  parts: Record<string, { rss: number; pss: number }>;
}

interface Growth {
  baselineMiB: number;
  endMiB: number;
  maxMiB: number;
  growthPct: number;
  /** Least-squares slope over the samples after the warm-up. */
  slopeMiBPerHour: number;
}

function growthOf(samples: MemorySample[], part: string, field: 'rss' | 'pss'): Growth | undefined {
  const after = samples.filter((s) => s.atMs >= warmupMs && s.parts[part]);
  const base = after.filter((s) => s.atMs < warmupMs + windowMs).map((s) => s.parts[part]![field]);
  const end = samples.filter((s) => s.atMs >= durationMs - windowMs && s.parts[part]).map((s) => s.parts[part]![field]);
  if (base.length === 0 || end.length === 0) return undefined;
  const mib = (kib: number) => round1(kib / 1024);
  const baseline = median(base);
  const last = median(end);
  const xs = after.map((s) => s.atMs / 3_600_000);
  const ys = after.map((s) => s.parts[part]![field] / 1024);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  const slope = sxx === 0 ? 0 : xs.reduce((a, x, k) => a + (x - mx) * (ys[k]! - my), 0) / sxx;
  return {
    baselineMiB: mib(baseline),
    endMiB: mib(last),
    maxMiB: mib(Math.max(...after.map((s) => s.parts[part]![field]))),
    growthPct: round1(((last - baseline) / baseline) * 100),
    slopeMiBPerHour: round1(slope),
  };
}

/**
 * What the Temporal server's Go heap holds (HeapAlloc, from its metrics), beside its RSS: it
 * tells growing live data from the slack the Go runtime keeps. Shown, not judged.
 */
const goHeapPart = 'temporal (Go heap, diagnostic)';

async function goHeapKib(metricsPort: number): Promise<number | undefined> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const bytes = Number(/^memory_heap\{service_name="history"\} (\S+)$/m.exec(text)?.[1]);
    return Number.isFinite(bytes) ? Math.round(bytes / 1024) : undefined;
  } catch {
    return undefined;
  }
}

function sampleMemory(stack: Stack, startedAt: number): MemorySample {
  const parts: MemorySample['parts'] = {};
  const pids = stack.pids();
  for (const [part, pid] of Object.entries(pids)) if (pid) parts[part] = { rss: treeRssKib(pid), pss: treePssKib(pid) };
  if (pids.runner) parts['runner (node alone)'] = { rss: rssKib(pids.runner), pss: pssKib(pids.runner) };
  return { atMs: performance.now() - startedAt, load1: round1(os.loadavg()[0]!), parts };
}

async function soak(stack: Stack, temporalMetricsPort: number): Promise<{ results: Record<string, unknown>; lines: string[]; failed: boolean }> {
  const api = stack.urls.gateway;
  const http = new Checked(api);
  stack.onExit((part, exit) => http.fail('stack', `${part} exited: ${JSON.stringify(exit)}`));

  // The people: the superadmin and a few users, each with a token of their own.
  const admin: Account = { ...ADMIN, token: await login(api, ADMIN.email, ADMIN.password) };
  const users: Account[] = [];
  for (let u = 0; u < USERS; u++) {
    const account = { email: `soak-${Date.now()}-${u}@example.org`, password: 'Soak-Passw0rd!42', token: '' };
    const res = await fetch(`${api}/api/v1/user`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email: account.email, name: `Soak ${u}`, password: account.password }) });
    if (res.status !== 200) throw new Error(`cannot register a soak user: ${res.status} ${await res.text()}`);
    account.token = await login(api, account.email, account.password);
    users.push(account);
  }
  // The superadmin's scripts, published so the users may run them.
  const quick = await builtSkeleton(api, admin.token, QUICK);
  const withToken = await builtSkeleton(api, admin.token, WITH_TOKEN);
  const slow = await builtSkeleton(api, admin.token, SLOW);
  for (const id of [quick, withToken]) if (!(await http.call('setup', 'POST', `/api/v1/script/${id}/publish`, { token: admin.token }))) throw new Error(`cannot publish ${id}: ${JSON.stringify(http.errors)}`);

  const recent: { id: string; owner: Account }[] = [];
  const skipped: Partial<Record<Lane, number>> = {};
  const runs = { started: 0, finished: 0, cancelled: 0, notTerminal: 0, wrong: 0, followed: 0, logsRead: 0, msToEnd: [] as number[] };
  const pick = <T>(list: T[]) => list[Math.floor(Math.random() * list.length)]!;
  const terminal = new Set(['FINISHED', 'FAILED', 'CANCELLED']);

  /** Polls an execution until it is terminal (or the deadline); its last body. */
  const poll = async (id: string, token: string, deadline: number) => {
    for (;;) {
      const got = await http.call('execution poll', 'GET', `/api/v1/execution/${id}`, { token });
      if (got && terminal.has(got.data.status)) return got.data;
      if (performance.now() > deadline) return got?.data;
      await sleep(2000);
    }
  };
  /** The last lines of a run's log, for the detail of a run that went wrong. */
  const tail = async (id: string) => {
    const log = await http.call('execution log', 'GET', `/api/v1/execution/${id}/log`, { token: admin.token });
    return ((log?.data ?? []) as { text: string }[]).slice(-5).map((l) => l.text.slice(0, 200)).join(' | ');
  };

  /** One run of `scriptId` by `owner`, to FINISHED with its results; every `follow`-th through its event stream. */
  const oneRun = async (i: number, scriptId: string, owner: Account, follow: boolean, readLog: boolean, expectedLine: string) => {
    const began = performance.now();
    const created = await http.call('run', 'POST', `/api/v1/script/${scriptId}/run`, { token: owner.token, body: { n: i } });
    if (!created) return;
    const id = created.data.id as string;
    runs.started++;
    recent.push({ id, owner });
    if (recent.length > 200) recent.shift();
    const deadline = began + RUN_DEADLINE_MS;
    let status: string | undefined;
    await sleep(1000);
    if (follow) {
      runs.followed++;
      status = await Promise.race([
        streamUntilEnd(api, owner.token, id).catch((err: unknown) => {
          http.fail('run events', `${id}: ${String(err)}`);
          return 'stream failed';
        }),
        sleep(RUN_DEADLINE_MS).then(() => 'no end of stream'),
      ]);
    }
    const done = await poll(id, owner.token, deadline);
    status = done?.status ?? status;
    if (!done || !terminal.has(done.status)) {
      runs.notTerminal++;
      http.fail('run', `${id} (n=${i}) not terminal after ${RUN_DEADLINE_MS / 1000} s: ${status}`);
      return;
    }
    runs.msToEnd.push(performance.now() - began);
    if (!http.expect('run', done.status === 'FINISHED' && done.results?.n === i && done.results?.ok === true && done.progress === 100, () => `${id} (n=${i}) ended ${done.status}, progress ${done.progress}, results ${JSON.stringify(done.results)}`)) {
      runs.wrong++;
      http.fail('run', `${id} log: ${await tail(id)}`);
      return;
    }
    runs.finished++;
    if (readLog) {
      const log = await http.call('execution log', 'GET', `/api/v1/execution/${id}/log`, { token: owner.token });
      runs.logsRead++;
      if (log) http.expect('execution log', (log.data as { text: string }[]).some((l) => l.text === expectedLine), () => `${id}: no "${expectedLine}" among ${JSON.stringify(log.data).slice(0, 300)}`);
    }
  };

  const everyone = [...users, admin];
  const startedAt = performance.now();
  const endAt = startedAt + durationMs;
  const samples: MemorySample[] = [];
  const sampler = (async () => {
    for (let next = startedAt; next <= endAt; next += SAMPLE_MS) {
      await sleep(next - performance.now());
      const sample = sampleMemory(stack, startedAt);
      const heap = await goHeapKib(temporalMetricsPort);
      if (heap !== undefined) sample.parts[goHeapPart] = { rss: heap, pss: heap };
      samples.push(sample);
    }
  })();
  const progress = setInterval(() => {
    const requests = [...http.kinds.values()].reduce((a, s) => a + s.ok, 0);
    process.stderr.write(
      `[soak ${Math.round((performance.now() - startedAt) / 1000)} s] requests ${requests}, errors ${http.errorCount}, runs ${runs.started} started / ${runs.finished} finished / ${runs.cancelled} cancelled, skipped ${JSON.stringify(skipped)}, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}\n`,
    );
  }, 60_000);

  const go = (name: Lane, op: (i: number) => Promise<void>) => lane(RATES[name].perSecond, RATES[name].maxInFlight, endAt, () => (skipped[name] = (skipped[name] ?? 0) + 1), op);
  const started = await Promise.all([
    go('login', async (i) => {
      const who = i % 7 === 6 ? admin : users[i % USERS]!;
      const got = await http.call('login', 'POST', '/auth', { body: { email: who.email, password: who.password } });
      if (got && http.expect('login', typeof got.access_token === 'string' && got.expires_in > 0, () => `login body ${JSON.stringify(got).slice(0, 200)}`)) who.token = got.access_token;
    }),
    go('me', async () => {
      const who = pick(everyone);
      const got = await http.call('user me', 'GET', '/api/v1/user/me', { token: who.token });
      if (got) http.expect('user me', got.data?.email === who.email, () => `me of ${who.email}: ${JSON.stringify(got).slice(0, 200)}`);
    }),
    go('scriptList', async () => {
      const got = await http.call('script list', 'GET', '/api/v1/script?per_page=20', { token: pick(users).token });
      if (got) http.expect('script list', Array.isArray(got.data) && got.data.length >= 2, () => `script list: ${JSON.stringify(got).slice(0, 200)}`);
    }),
    go('executionGet', async () => {
      if (recent.length === 0) return;
      const { id, owner } = pick(recent);
      const got = await http.call('execution get', 'GET', `/api/v1/execution/${id}`, { token: owner.token });
      if (got) http.expect('execution get', got.data?.id === id, () => `execution ${id}: ${JSON.stringify(got).slice(0, 200)}`);
    }),
    go('executionList', async () => {
      const got = await http.call('execution list (own)', 'GET', '/api/v1/execution/user?page=1&per_page=20', { token: pick(users).token });
      if (got) http.expect('execution list (own)', Array.isArray(got.data) && got.data.length <= 20 && typeof got.total === 'number', () => `own list: ${JSON.stringify(got).slice(0, 200)}`);
    }),
    go('adminList', async () => {
      const got = await http.call('execution list (all)', 'GET', '/api/v1/execution?page=1&per_page=50&exclude=params,results', { token: admin.token });
      if (got) http.expect('execution list (all)', Array.isArray(got.data) && got.total >= runs.finished, () => `all list: total ${got.total}, ${runs.finished} finished`);
    }),
    go('run', (i) => {
      const token = i % 5 === 2;
      return oneRun(i, token ? withToken : quick, users[i % USERS]!, i % 5 === 0, i % 4 === 1, token ? 'posted with API_TOKEN' : 'step 3 of 3');
    }),
    go('cancel', async () => {
      const created = await http.call('cancel', 'POST', `/api/v1/script/${slow}/run`, { token: admin.token, body: {} });
      if (!created) return;
      const id = created.data.id as string;
      await sleep(Math.random() * 3000);
      const cancelled = await http.call('cancel', 'POST', `/api/v1/execution/${id}/cancel`, { token: admin.token, expect: 202 });
      if (!cancelled) return;
      const done = await poll(id, admin.token, performance.now() + RUN_DEADLINE_MS);
      if (http.expect('cancel', done?.status === 'CANCELLED', () => `cancelled run ${id} ended ${done?.status ?? 'nowhere'}`)) runs.cancelled++;
    }),
    go('upload', async (i) => {
      const owner = users[i % USERS]!;
      const name = `Soak Upload ${i} ${Date.now()}`;
      const began = performance.now();
      try {
        const res = await upload(api, owner.token, gzipSync(tar(cliMembers(name, { main: QUICK }))), `${name}.tar.gz`);
        if (!http.expect('upload', res.status === 200, () => `upload: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`)) return;
        const id = res.body.data.id as string;
        let status = 'PENDING';
        while (status !== 'SUCCESS' && status !== 'FAIL' && performance.now() - began < RUN_DEADLINE_MS) {
          await sleep(500);
          status = (await http.call('script get', 'GET', `/api/v1/script/${id}`, { token: owner.token }))?.data?.status ?? status;
        }
        if (http.expect('upload', status === 'SUCCESS', () => `script ${id} ${status} after ${Math.round(performance.now() - began)} ms`)) await oneRun(1_000_000 + i, id, owner, false, true, 'step 3 of 3');
      } catch (err) {
        http.fail('upload', String(err));
      }
    }),
  ]);
  clearInterval(progress);
  await sampler;

  // Figures.
  const kinds = Object.fromEntries(
    [...http.kinds.entries()].map(([kind, s]) => {
      const sorted = [...s.latencies].sort((a, b) => a - b);
      return [kind, { ok: s.ok, errors: s.errors, perSecond: round1(s.ok / minutes / 60), p50Ms: Math.round(percentile(sorted, 0.5)), p99Ms: Math.round(percentile(sorted, 0.99)), maxMs: Math.round(sorted[sorted.length - 1] ?? 0) }];
    }),
  );
  const partNames = [...new Set(samples.flatMap((s) => Object.keys(s.parts)))];
  const memory = Object.fromEntries(
    partNames.map((part) => {
      const rss = growthOf(samples, part, 'rss');
      const pss = growthOf(samples, part, 'pss');
      return [part, { rss, pss, flagged: part !== goHeapPart && (rss?.growthPct ?? 0) > GROWTH_LIMIT_PCT }];
    }),
  );
  const loads = samples.map((s) => s.load1).sort((a, b) => a - b);
  const endTimes = [...runs.msToEnd].sort((a, b) => a - b);
  const flagged = Object.entries(memory).filter(([, m]) => m.flagged).map(([part]) => part);
  const results = {
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, date: new Date().toISOString() },
    commit: gitCommit(),
    soak: { minutes, load: scale, warmupSeconds: warmupMs / 1000, windowSeconds: windowMs / 1000, sampleSeconds: SAMPLE_MS / 1000, users: USERS, rates: RATES },
    loadAverage: { min: loads[0], median: percentile(loads, 0.5), max: loads[loads.length - 1] },
    started: Object.fromEntries((Object.keys(RATES) as Lane[]).map((lane, k) => [lane, started[k]])),
    skipped,
    requests: kinds,
    runs: { ...runs, msToEnd: undefined, p50MsToEnd: Math.round(percentile(endTimes, 0.5)), p99MsToEnd: Math.round(percentile(endTimes, 0.99)) },
    errors: { total: http.errorCount, byKind: Object.fromEntries([...http.kinds.entries()].filter(([, s]) => s.errors > 0).map(([k, s]) => [k, s.errors])), first: http.errors },
    memory,
    samples: samples.map((s) => ({ atSeconds: Math.round(s.atMs / 1000), load1: s.load1, rssMiB: Object.fromEntries(Object.entries(s.parts).map(([p, v]) => [p, round1(v.rss / 1024)])) })),
    verdict: { errors: http.errorCount, flagged, pass: http.errorCount === 0 && flagged.length === 0 },
  };

  const requestCount = Object.values(kinds).reduce((a, k) => a + k.ok, 0);
  const lines = [
    `machine: ${results.machine.cpus} cores (${results.machine.cpuModel}), ${results.machine.memoryGiB} GiB, Node ${process.version}; commit ${results.commit}`,
    `soak: ${minutes} min of mixed load, ${requestCount} requests checked (${round1(requestCount / minutes / 60)}/s), load average (1 min) ${results.loadAverage.min}–${results.loadAverage.max}, median ${results.loadAverage.median}`,
    ...Object.entries(kinds).map(([kind, k]) => `  ${kind.padEnd(22)} ${String(k.ok).padStart(7)} ok  ${String(k.perSecond).padStart(5)}/s  p50 ${k.p50Ms} ms  p99 ${k.p99Ms} ms  max ${k.maxMs} ms  errors ${k.errors}`),
    `runs: ${runs.started} started, ${runs.finished} FINISHED as expected (${runs.followed} followed over SSE, ${runs.logsRead} logs read back), ${runs.cancelled} CANCELLED of ${started[7]} cancels, ${runs.notTerminal} not terminal, ${runs.wrong} wrong; submit → end p50 ${results.runs.p50MsToEnd} ms, p99 ${results.runs.p99MsToEnd} ms`,
    `skipped ticks (lane at its in-flight cap): ${JSON.stringify(skipped)}`,
    `errors: ${http.errorCount}${http.errorCount ? ` ${JSON.stringify(results.errors.byKind)}` : ''}`,
    ...http.errors.slice(0, 10).map((e) => `  at ${e.atSeconds} s ${e.kind}: ${e.detail}`),
    `memory (MiB, RSS with children; baseline = median of ${windowMs / 1000} s after a ${warmupMs / 1000} s warm-up, end = median of the last ${windowMs / 1000} s):`,
    ...Object.entries(memory).map(([part, m]) =>
      m.rss
        ? `  ${part.padEnd(20)} ${String(m.rss.baselineMiB).padStart(7)} → ${String(m.rss.endMiB).padStart(7)}  max ${String(m.rss.maxMiB).padStart(7)}  growth ${String(m.rss.growthPct).padStart(5)} %  slope ${m.rss.slopeMiBPerHour} MiB/h  (PSS ${m.pss?.baselineMiB} → ${m.pss?.endMiB}, ${m.pss?.growthPct} %)${m.flagged ? '  ** over 10 % **' : ''}`
        : `  ${part}: too few samples`,
    ),
    `verdict: ${results.verdict.pass ? 'PASS' : 'FAIL'} (errors ${http.errorCount}, over 10 %: ${flagged.length ? flagged.join(', ') : 'none'})`,
  ];
  return { results, lines, failed: !results.verdict.pass };
}

function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
    return dirty ? `${head} (with uncommitted changes)` : head;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(os.tmpdir(), 'gef-soak-'));
  let stack: Stack | undefined;
  const abort = () => {
    stack?.killNow();
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', abort).once('SIGTERM', abort);
  try {
    const ports = await freeStackPorts();
    ({ stack } = await startBenchStack(dataDir, ports));
    await waitHealthy(stack.urls.gateway);
    process.stderr.write(`[soak] stack up at ${stack.urls.gateway} (pids ${JSON.stringify(stack.pids())}); ${minutes} min of load\n`);
    const { results, lines, failed } = await soak(stack, ports.temporalMetrics);
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n\n${lines.join('\n')}\n`);
    process.exitCode = failed ? 1 : 0;
  } finally {
    await stack?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// Exits once done: the first 30-minute run's process stayed alive after it printed its figures and stopped its stack
// (no socket left open; the handle holding it was not found).
main()
  .then(() => process.exit())
  .catch((err: unknown) => {
    process.stderr.write(`soak failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
