/**
 * Execution benchmarks (issue 6), on a running stack:
 *
 *   runs  run → FINISHED of the Trends.Earth CLI skeleton, one after another (POST run,
 *         then the SSE stream until its end; the client's view of the latency)
 *   burst 1,000 runs of the skeleton submitted at once by the superadmin (at most 100
 *         requests in flight), then the list endpoint watched until every one is terminal:
 *         executions per second from the first submission to the last terminal status, and
 *         any run lost (not accepted, or never terminal)
 *   read  authenticated GET /api/v1/execution/<id> at 32 concurrent clients, beside a bare
 *         node:http server answering the same JSON in the same run
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { cliMembers, tar } from '../e2e/helpers/archives';
import { cpuLine, cpuOfParts, cpuPerUnit, waitQuiet, type StackPids } from './cpu';
import { readBesideBare, readLines, type LoadResult, type ReadComparison } from './load';
import { upload } from './scripts';

export interface BurstResult {
  runs: number;
  /** Submissions not accepted (non-200). */
  rejected: number;
  submitMs: number;
  /** From the first submission until every accepted run was terminal (or the wait gave up). */
  totalMs: number;
  perSecond: number;
  finished: number;
  failed: number;
  cancelled: number;
  /** Accepted and not terminal when the wait ended (at the deadline, or stalled). */
  unfinished: number;
  /** Whether the wait ended because nothing progressed for a long while. */
  stalled: boolean;
  /** Rejected, plus the unfinished ones of a stalled wait. */
  lost: number;
  /**
   * CPU per terminal run (ms) of each part of the stack, over the whole burst (submissions
   * and runs), with their sum as `total`: where a run's time goes.
   */
  cpuMsPerRun?: Record<string, number>;
}

export interface ExecutionBench {
  runs: { samples: number; warmupRuns: number; medianMs: number; p90Ms: number; minMs: number; maxMs: number };
  burst?: BurstResult;
  /** How long the stack took to become quiet after the burst, before the reads. */
  settleMs?: number;
  read: ReadComparison;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Uploads the CLI skeleton (or one with this `src/main.py`) and waits until it built; its id. */
export async function builtSkeleton(api: string, token: string, main?: string): Promise<string> {
  const name = `Bench Run ${randomBytes(4).toString('hex')}`;
  const res = await upload(api, token, gzipSync(tar(cliMembers(name, main === undefined ? {} : { main }))), `${name}.tar.gz`);
  if (res.status !== 200) throw new Error(`upload failed: ${res.status} ${JSON.stringify(res.body)}`);
  const id = res.body.data.id as string;
  for (let i = 0; i < 3000; i++) {
    const s = await fetch(`${api}/api/v1/script/${id}`, { headers: { Authorization: `Bearer ${token}` } });
    const status = ((await s.json()) as { data: { status: string } }).data.status;
    if (status === 'SUCCESS') return id;
    if (status === 'FAIL') throw new Error('the skeleton did not build');
    await sleep(50);
  }
  throw new Error('the skeleton never built');
}

/** Reads an execution's event stream until it ends; resolves with the last status seen. */
export function streamUntilEnd(api: string, token: string, id: string): Promise<string | undefined> {
  const url = new URL(`${api}/api/v1/execution/${id}/events`);
  return new Promise((resolve, reject) => {
    let status: string | undefined;
    let buffer = '';
    const req = http.get({ host: url.hostname, port: url.port, path: url.pathname, headers: { Authorization: `Bearer ${token}` }, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`GET ${url.pathname}: HTTP ${res.statusCode}`));
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event === 'status' && data) status = (JSON.parse(data) as { status: string }).status;
        }
      });
      res.on('end', () => resolve(status));
    });
    req.on('error', reject);
  });
}

/** How many runs of a script have each terminal status (the list endpoint's totals). */
async function terminalCounts(api: string, token: string, scriptId: string): Promise<{ FINISHED: number; FAILED: number; CANCELLED: number }> {
  const count = async (status: string) => {
    const res = await fetch(`${api}/api/v1/execution?script_id=${scriptId}&status=${status}&per_page=1&exclude=params,results`, { headers: { Authorization: `Bearer ${token}` } });
    if (res.status !== 200) throw new Error(`list failed: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { total: number }).total;
  };
  const [FINISHED, FAILED, CANCELLED] = await Promise.all([count('FINISHED'), count('FAILED'), count('CANCELLED')]);
  return { FINISHED, FAILED, CANCELLED };
}

/**
 * `runs` runs of a freshly built skeleton submitted at once (at most `inFlight` requests
 * open), then counted until all are terminal; gives up after `stallMs` without progress or
 * `maxMs` in all.
 */
export async function benchBurst(api: string, token: string, runs = 1000, inFlight = 100, stallMs = 120_000, maxMs = 600_000, pids?: StackPids): Promise<BurstResult> {
  const scriptId = await builtSkeleton(api, token);
  const cpuBefore = pids ? cpuOfParts(pids()) : undefined;
  const began = performance.now();
  let next = 0;
  let accepted = 0;
  let rejected = 0;
  const submit = async () => {
    while (next < runs) {
      next++;
      const res = await fetch(`${api}/api/v1/script/${scriptId}/run`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: '{}' }).catch(() => undefined);
      if (res?.status === 200) accepted++;
      else rejected++;
      await res?.arrayBuffer().catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, runs) }, submit));
  const submitMs = performance.now() - began;
  let counts = await terminalCounts(api, token, scriptId);
  let done = counts.FINISHED + counts.FAILED + counts.CANCELLED;
  let lastProgress = performance.now();
  while (done < accepted && performance.now() - lastProgress < stallMs && performance.now() - began < maxMs) {
    await sleep(200);
    counts = await terminalCounts(api, token, scriptId);
    const now = counts.FINISHED + counts.FAILED + counts.CANCELLED;
    if (now > done) lastProgress = performance.now();
    done = now;
  }
  const stalled = done < accepted && performance.now() - lastProgress >= stallMs;
  const totalMs = (stalled ? lastProgress : performance.now()) - began;
  const cpuMsPerRun = cpuBefore && pids && done > 0 ? cpuPerUnit(cpuBefore, cpuOfParts(pids()), done) : undefined;
  return {
    runs,
    rejected,
    submitMs: Math.round(submitMs),
    totalMs: Math.round(totalMs),
    perSecond: Math.round((done / totalMs) * 1000 * 10) / 10,
    finished: counts.FINISHED,
    failed: counts.FAILED,
    cancelled: counts.CANCELLED,
    unfinished: accepted - done,
    stalled,
    lost: rejected + (stalled ? accepted - done : 0),
    ...(cpuMsPerRun ? { cpuMsPerRun } : {}),
  };
}

export interface ExecutionBenchOptions {
  sequentialRuns?: number;
  burstRuns?: number;
  warmupRuns?: number;
  /** How long the burst may take before the wait for it gives up. */
  burstMaxMs?: number;
  /** The stack's processes, for the burst's CPU per run. */
  pids?: StackPids;
}

export async function benchExecutions(api: string, token: string, seconds: number, options: ExecutionBenchOptions = {}): Promise<ExecutionBench> {
  const { sequentialRuns = 20, burstRuns = 1000, warmupRuns = 10, burstMaxMs = 600_000, pids } = options;
  const scriptId = await builtSkeleton(api, token);
  const run = async () => {
    const res = await fetch(`${api}/api/v1/script/${scriptId}/run`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: '{}' });
    if (res.status !== 200) throw new Error(`run failed: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { data: { id: string } }).data.id;
  };
  // Runs to warm every process's path up (a server in service is warm): on a stack kept
  // up between batches of 20, the first batch after a restart of the services was
  // 191–213 ms at the median and the next ones 184–197 ms, with a single warm-up run.
  let warm = '';
  for (let i = 0; i < warmupRuns; i++) {
    warm = await run();
    await streamUntilEnd(api, token, warm);
  }

  const samples: number[] = [];
  for (let i = 0; i < sequentialRuns; i++) {
    const began = performance.now();
    const id = await run();
    const status = await streamUntilEnd(api, token, id);
    if (status !== 'FINISHED') throw new Error(`run ${id} ended ${status}`);
    samples.push(performance.now() - began);
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const pick = (p: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! * 10) / 10;

  const burst = burstRuns > 0 ? await benchBurst(api, token, burstRuns, 100, 120_000, burstMaxMs, pids) : undefined;

  // The reads on a quiet stack, as the other figures are: a burst may leave work behind it.
  const settleMs = burst && pids ? await waitQuiet(pids) : undefined;
  const read = await readBesideBare(api, `/api/v1/execution/${warm}`, token, seconds * 1000);
  return {
    runs: { samples: samples.length, warmupRuns, medianMs: pick(0.5), p90Ms: pick(0.9), minMs: pick(0), maxMs: pick(1 - 1e-9) },
    ...(burst ? { burst } : {}),
    ...(settleMs !== undefined ? { settleMs } : {}),
    read,
  };
}

/** The burst's figures: its rate and outcomes, and the CPU each part spent per run. */
export function burstLines(b: BurstResult): string[] {
  return [
    `${b.runs} skeleton runs at once: ${b.perSecond} executions/s (submitted in ${b.submitMs} ms, ${b.unfinished === 0 ? 'all terminal' : `waited`} after ${b.totalMs} ms); ` +
      `FINISHED ${b.finished}, FAILED ${b.failed}, CANCELLED ${b.cancelled}, rejected ${b.rejected}, unfinished ${b.unfinished}${b.stalled ? ' (stalled)' : ''}, lost ${b.lost}`,
    ...(b.cpuMsPerRun ? [`burst CPU per run (ms): ${cpuLine(b.cpuMsPerRun)}`] : []),
  ];
}

export const settleLine = (ms: number): string => `the stack was quiet again ${(ms / 1000).toFixed(1)} s after the burst`;

export function executionBenchLines(r: ExecutionBench, line: (name: string, l: LoadResult) => string): string[] {
  return [
    `run → FINISHED, CLI skeleton, sequential (${r.runs.samples}, after ${r.runs.warmupRuns} warm-up runs): median ${r.runs.medianMs} ms, p90 ${r.runs.p90Ms} ms, min ${r.runs.minMs} ms, max ${r.runs.maxMs} ms`,
    ...(r.burst ? burstLines(r.burst) : []),
    ...(r.settleMs !== undefined ? [settleLine(r.settleMs)] : []),
    ...readLines('GET /api/v1/execution/<id>', r.read, line),
  ];
}
