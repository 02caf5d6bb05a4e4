import { request } from 'node:http';
import { connect } from 'node:net';
import { LaunchError, PartExitedError } from './errors';
import { sleep, type ManagedProcess } from './process';

export interface WaitOptions {
  /** What is awaited, for the timeout message ("keycloak /health/ready"). */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  /** Stop waiting with PartExitedError as soon as this process exits. */
  process?: ManagedProcess;
}

/** Polls probe() until it answers true; fails fast when the watched process exits. */
export async function waitUntil(probe: () => Promise<boolean>, options: WaitOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  const interval = options.intervalMs ?? 200;
  for (;;) {
    const proc = options.process;
    if (proc && !proc.running) throw new PartExitedError(proc.spec.name, proc.spec.logFile, proc.exit ?? { code: null, signal: null });
    if (await probe()) return;
    if (Date.now() >= deadline) {
      const log = proc ? `; see ${proc.spec.logFile}` : '';
      throw new LaunchError(`${options.what} not ready after ${Math.round(options.timeoutMs / 1000)} s${log}`);
    }
    await sleep(interval);
  }
}

export interface HttpAnswer {
  status: number;
  body: string;
}

/** GET a URL; undefined when nothing answers (refused, reset, timeout). */
export function httpGet(url: string, timeoutMs = 2000): Promise<HttpAnswer | undefined> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

export async function httpOk(url: string): Promise<boolean> {
  const answer = await httpGet(url);
  return answer !== undefined && answer.status >= 200 && answer.status < 300;
}

/** Whether something accepts TCP connections on host:port. */
export function tcpOpen(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
