/**
 * Executions for end-to-end tests: publishing a Python script and waiting for its build,
 * running it, waiting for a status, gates that hold a running script until the test opens
 * them, Python calling the API with the run's token, and a Server-Sent Events reader.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, apiUrl } from './api';
import { cliArchive, upload, waitForStatus } from './archives';
import { gatesDir } from '../../harness/stack';

export const terminalStatuses = ['FINISHED', 'FAILED', 'CANCELLED'] as const;

export interface LogLine {
  id: number;
  text: string;
  level: string;
  register_date: string;
  execution_id: string;
  attempt: number;
}

/** Publishes a script whose `src/main.py` is `main` and waits until it is built. */
export async function publishScript(token: string, name: string, main: string, config: Record<string, unknown> = {}): Promise<{ id: string; slug: string }> {
  const res = await upload(token, cliArchive(name, { main, config }), `${name}.tar.gz`);
  if (res.status !== 200) throw new Error(`upload of ${name}: ${res.status} ${res.text}`);
  const { script } = await waitForStatus(token, res.body.data.id, ['SUCCESS', 'FAIL'], 300_000);
  if (script.status !== 'SUCCESS') throw new Error(`script ${name} did not build: ${script.status}`);
  return { id: script.id, slug: script.slug };
}

/** POST /script/<key>/run with an optional query string and body; throws unless 200. */
export async function runScript(token: string, key: string, options: { query?: string; body?: unknown } = {}): Promise<any> {
  const res = await api('POST', `/api/v1/script/${encodeURIComponent(key)}/run${options.query ?? ''}`, { token, ...(options.body !== undefined ? { body: options.body } : {}) });
  if (res.status !== 200) throw new Error(`run of ${key}: ${res.status} ${res.text}`);
  return res.body.data;
}

/** Polls an execution until its status is one of `statuses` (by default a terminal one). */
export async function waitForExecution(token: string, id: string, statuses: readonly string[] = terminalStatuses, timeoutMs = 180_000): Promise<any> {
  const began = Date.now();
  for (;;) {
    const res = await api('GET', `/api/v1/execution/${id}`, { token });
    if (res.status !== 200) throw new Error(`GET execution ${id}: ${res.status} ${res.text}`);
    if (statuses.includes(res.body.data.status)) return res.body.data;
    if (Date.now() - began > timeoutMs) throw new Error(`execution ${id} still ${res.body.data.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One page of an execution's log. */
async function executionLogPage(token: string, id: string, query = ''): Promise<LogLine[]> {
  const res = await api('GET', `/api/v1/execution/${id}/log${query}`, { token });
  if (res.status !== 200) throw new Error(`GET log of ${id}: ${res.status} ${res.text}`);
  return res.body.data;
}

/** The whole log of an execution (every page, continued with `last-id`), or its lines after `query`'s cursor. */
export async function executionLog(token: string, id: string, query = ''): Promise<LogLine[]> {
  const lines = await executionLogPage(token, id, query);
  for (let page = lines; page.length > 0 && query === ''; ) {
    page = await executionLogPage(token, id, `?last-id=${page[page.length - 1]!.id}`);
    lines.push(...page);
  }
  return lines;
}

/** Polls the log until `check` holds for it. */
export async function waitForLog(token: string, id: string, check: (lines: LogLine[]) => boolean, timeoutMs = 120_000): Promise<LogLine[]> {
  const began = Date.now();
  for (;;) {
    const lines = await executionLog(token, id);
    if (check(lines)) return lines;
    if (Date.now() - began > timeoutMs) throw new Error(`log of ${id} never matched; it has: ${lines.map((l) => l.text).join(' | ').slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A gate a running script waits at: a file path the script polls (passed as a param);
 * `open()` creates the file. Sandboxed scripts run as other users, so the directory is
 * world-readable. Made in the e2e harness's gates directory (removed with its stack), else
 * in the system temp dir (the caller removes it).
 */
export interface Gate {
  path: string;
  open(): void;
  remove(): void;
}

export function gate(): Gate {
  const dir = mkdtempSync(join(gatesDir() ?? tmpdir(), 'gef-e2e-gate-'));
  chmodSync(dir, 0o755);
  const path = join(dir, 'open');
  return {
    path,
    open: () => writeFileSync(path, 'open\n', { mode: 0o644 }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Python that waits for the gate named by `params["gate"]` (at most five minutes). */
export const pythonGate = `
import os, time

def wait_gate(params):
    deadline = time.time() + 300
    while not os.path.exists(params["gate"]) and time.time() < deadline:
        time.sleep(0.05)
`;

/**
 * Python calling the API with the run's own token (`API_TOKEN`): `call(method, path, body)`
 * answers the HTTP status, refusals included.
 */
export const pythonApiCall = `
import json, os, urllib.error, urllib.request

def call(method, path, body=None):
    req = urllib.request.Request(os.environ["API_URL"] + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + os.environ["API_TOKEN"]})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
`;

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** A Server-Sent Events connection read as it arrives. */
export class EventStream {
  readonly events: SseEvent[] = [];
  /** Comment lines (keep-alives) seen. */
  comments = 0;
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  ended = false;
  private waiters: (() => void)[] = [];
  private req: http.ClientRequest | undefined;
  private buffer = '';

  /** Opens the stream; resolves with the answer's status once its headers arrive. */
  static open(path: string, headers: Record<string, string>): Promise<EventStream> {
    const stream = new EventStream();
    const url = new URL(`${apiUrl()}${path}`);
    return new Promise((resolve, reject) => {
      stream.req = http.get({ host: url.hostname, port: url.port, path: url.pathname + url.search, headers, agent: false }, (res) => {
        stream.status = res.statusCode ?? 0;
        stream.headers = res.headers;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => stream.feed(chunk));
        res.on('end', () => stream.finish());
        res.on('error', () => stream.finish());
        res.on('close', () => stream.finish());
        resolve(stream);
      });
      stream.req.on('error', (err) => {
        stream.finish();
        reject(err);
      });
    });
  }

  private feed(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const event: SseEvent = { event: 'message', data: '' };
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) {
          this.comments++;
          continue;
        }
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') event.id = value;
        else if (field === 'event') event.event = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length > 0) {
        event.data = data.join('\n');
        this.events.push(event);
      }
    }
    this.wake();
  }

  private finish(): void {
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Waits until `check` holds for the events so far (or the stream ended). */
  async until(check: (events: SseEvent[]) => boolean, timeoutMs = 120_000): Promise<SseEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (!check(this.events)) {
      if (this.ended) throw new Error(`the event stream ended before the condition held; events: ${JSON.stringify(this.events).slice(0, 2000)}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting on the event stream; events: ${JSON.stringify(this.events).slice(0, 2000)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.events;
  }

  /** Waits until the server ends the stream. */
  async closed(timeoutMs = 180_000): Promise<SseEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error('the event stream did not end');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.events;
  }

  close(): void {
    this.req?.destroy();
  }
}

/** The log lines among some events, parsed. */
export const logEvents = (events: SseEvent[]): LogLine[] => events.filter((e) => e.event === 'log').map((e) => JSON.parse(e.data) as LogLine);
