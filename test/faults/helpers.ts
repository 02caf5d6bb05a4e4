/**
 * Helpers of the fault suite: the parts a test takes down, waiting for a condition with a
 * deadline, the contract's error body, the health endpoint, and the per-attempt log check
 * of a run.
 */
import { api, type ApiResponse } from '../e2e/helpers/api';
import type { LogLine } from '../e2e/helpers/executions';
import { killPart, startPart, stopPart, type PartName } from '../harness/stack';

import { eventually, sleep } from '../e2e/helpers/wait';

export { eventually, sleep };

/** The HTTP status of /api-health, or undefined when the gateway does not answer. */
export async function healthStatus(): Promise<number | undefined> {
  try {
    return (await api('GET', '/api-health', { headers: { connection: 'close' } })).status;
  } catch {
    return undefined;
  }
}

/**
 * The contract's error body (§1): `{status, detail}` with the HTTP status, no stack, SQL or
 * internal address in it.
 */
export function expectErrorBody(res: ApiResponse, status: number): void {
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${res.text.slice(0, 500)}`);
  const body = res.body as { status?: unknown; detail?: unknown };
  if (typeof body !== 'object' || body === null || body.status !== status || typeof body.detail !== 'string') {
    throw new Error(`not the contract's error body: ${res.text.slice(0, 500)}`);
  }
  if (/\bat \S+ \(|select |insert |update |ECONNREFUSED|127\.0\.0\.1|localhost:\d+/i.test(res.text)) {
    throw new Error(`error body leaks internals: ${res.text.slice(0, 500)}`);
  }
}

/**
 * A run's log holds each attempt's script lines exactly once, in order: every attempt's
 * lines among `expected` are a prefix of `expected`, the last attempt's are all of them,
 * and every line of an attempt comes before any line of the next.
 */
export function expectAttemptsComplete(log: LogLine[], expected: readonly string[]): void {
  const attempts = [...new Set(log.map((l) => l.attempt))].filter((a) => a > 0).sort((a, b) => a - b);
  if (attempts.length === 0) throw new Error('no attempt in the log');
  for (const attempt of attempts) {
    const texts = log.filter((l) => l.attempt === attempt && expected.includes(l.text)).map((l) => l.text);
    if (JSON.stringify(texts) !== JSON.stringify(expected.slice(0, texts.length))) {
      throw new Error(`attempt ${attempt}: ${JSON.stringify(texts)} is not a prefix of ${JSON.stringify(expected)}`);
    }
    if (attempt === attempts.at(-1) && texts.length !== expected.length) {
      throw new Error(`the last attempt (${attempt}) has ${JSON.stringify(texts)}, not all of ${JSON.stringify(expected)}`);
    }
  }
  for (let i = 1; i < attempts.length; i++) {
    const lastOfPrevious = Math.max(...log.filter((l) => l.attempt === attempts[i - 1]).map((l) => l.id));
    const firstOfThis = Math.min(...log.filter((l) => l.attempt === attempts[i]).map((l) => l.id));
    if (!(lastOfPrevious < firstOfThis)) throw new Error(`attempt ${attempts[i]} has lines before attempt ${attempts[i - 1]} ended`);
  }
  if (new Set(log.map((l) => l.id)).size !== log.length) throw new Error('a log line id appears twice');
}

/**
 * The parts a test file takes down. Its afterAll calls `restore()`, so that a test that
 * failed while a part was down leaves the stack whole for the next file.
 */
export class Outages {
  private readonly down = new Set<PartName>();

  async kill(part: PartName): Promise<void> {
    await killPart(part);
    this.down.add(part);
  }

  async stop(part: PartName): Promise<void> {
    await stopPart(part);
    this.down.add(part);
  }

  async start(part: PartName): Promise<void> {
    await startPart(part);
    this.down.delete(part);
  }

  /** Starts every part still down. */
  async restore(): Promise<void> {
    for (const part of [...this.down]) await this.start(part);
  }
}
