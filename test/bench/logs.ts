/**
 * Long logs (issue 6), on a running stack: one run whose script writes `lines` log lines
 * (`for i in range(n): logger.info("line %d", i)`), timed from the run's submission until
 * every line is readable, once and in order, through `GET /api/v1/execution/<id>/log` pages
 * (read with `last-id` while the run goes on, as a client following it would).
 */
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { cliMembers, tar } from '../e2e/helpers/archives';
import { upload } from './scripts';

export interface LogBench {
  lines: number;
  /** From the submission until every line was read in order through the log route. */
  totalMs: number;
  linesPerSecond: number;
  /** From the submission until the API said it ended (checked every 100 ms beside the reader). */
  finishedMs: number | undefined;
  /** Log pages read (GET …/log requests that returned lines). */
  pages: number;
  /** The attempt whose lines were all read (more than 1: the run was retried). */
  attempt: number;
  status: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function built(api: string, token: string, main: string): Promise<string> {
  const name = `Bench Log ${randomBytes(4).toString('hex')}`;
  const res = await upload(api, token, gzipSync(tar(cliMembers(name, { main, config: { timeout: 600 } }))), `${name}.tar.gz`);
  if (res.status !== 200) throw new Error(`upload failed: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  const id = res.body.data.id as string;
  for (let i = 0; i < 6000; i++) {
    const s = (await (await fetch(`${api}/api/v1/script/${id}`, { headers: { Authorization: `Bearer ${token}` } })).json()) as { data: { status: string } };
    if (s.data.status === 'SUCCESS') return id;
    if (s.data.status === 'FAIL') throw new Error('the log bench script did not build');
    await sleep(50);
  }
  throw new Error('the log bench script never built');
}

async function status(api: string, token: string, id: string): Promise<string> {
  const res = await fetch(`${api}/api/v1/execution/${id}?exclude=params,results`, { headers: { Authorization: `Bearer ${token}` } });
  return ((await res.json()) as { data: { status: string } }).data.status;
}

export async function benchLogs(api: string, token: string, lines = Number(process.env['BENCH_LOG_LINES'] ?? 100_000)): Promise<LogBench> {
  const main = ['def run(params, logger):', `    for i in range(${lines}):`, '        logger.info("line %d", i)', '    return "OK"', ''].join('\n');
  const scriptId = await built(api, token, main);
  const headers = { Authorization: `Bearer ${token}` };
  const began = performance.now();
  const res = await fetch(`${api}/api/v1/script/${scriptId}/run`, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body: '{}' });
  if (res.status !== 200) throw new Error(`run refused: ${res.status} ${await res.text()}`);
  const executionId = ((await res.json()) as { data: { id: string } }).data.id;

  let next = 0;
  let lastId: number | undefined;
  let pages = 0;
  let attempt = 1;
  let finishedMs: number | undefined;
  let last = 'PENDING';
  const terminal = new Set(['FINISHED', 'FAILED', 'CANCELLED']);
  let reading = true;
  // The status beside the reader (every 100 ms), for when the run ended.
  const watcher = (async () => {
    while (reading && !terminal.has(last)) {
      last = await status(api, token, executionId);
      if (terminal.has(last)) finishedMs ??= performance.now() - began;
      else await sleep(100);
    }
  })();
  let totalMs: number;
  try {
    while (next < lines) {
      const page = await fetch(`${api}/api/v1/execution/${executionId}/log${lastId !== undefined ? `?last-id=${lastId}` : ''}`, { headers });
      if (page.status !== 200) throw new Error(`log read failed: ${page.status} ${await page.text()}`);
      const items = ((await page.json()) as { data: { id: number; text: string; attempt: number }[] }).data;
      if (items.length === 0) {
        // Nothing new: a terminal run that has not written everything never will.
        if (terminal.has(last)) {
          const again = await fetch(`${api}/api/v1/execution/${executionId}/log${lastId !== undefined ? `?last-id=${lastId}` : ''}`, { headers });
          if (((await again.json()) as { data: unknown[] }).data.length === 0) throw new Error(`the run ended ${last} after ${next} of ${lines} lines`);
        }
        await sleep(10);
        continue;
      }
      pages++;
      for (const item of items) {
        lastId = item.id;
        if (item.attempt !== attempt) {
          // A retried attempt (its runner was lost) writes its lines again, after the earlier one's.
          attempt = item.attempt;
          next = 0;
        }
        const m = /^line (\d+)$/.exec(item.text);
        if (!m) continue;
        const n = Number(m[1]);
        if (n !== next) throw new Error(`line ${n} read where line ${next} was expected (out of order, lost or twice)`);
        next++;
      }
    }
    totalMs = performance.now() - began;
  } finally {
    reading = false;
    await watcher;
  }
  for (let i = 0; i < 600 && !terminal.has(last); i++) {
    last = await status(api, token, executionId);
    if (terminal.has(last)) finishedMs ??= performance.now() - began;
    else await sleep(50);
  }
  return { lines, totalMs: Math.round(totalMs), linesPerSecond: Math.round((lines / totalMs) * 1000), finishedMs: finishedMs === undefined ? undefined : Math.round(finishedMs), pages, attempt, status: last };
}

export function logBenchLines(r: LogBench): string[] {
  return [
    `one run writing ${r.lines} log lines: all readable in order after ${(r.totalMs / 1000).toFixed(2)} s, ${r.linesPerSecond} lines/s (${r.pages} pages${r.attempt > 1 ? `, attempt ${r.attempt}` : ''}; ${r.status} seen after ${((r.finishedMs ?? 0) / 1000).toFixed(2)} s)`,
  ];
}
