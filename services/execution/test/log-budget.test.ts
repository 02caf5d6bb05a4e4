import { randomUUID } from 'node:crypto';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { execution } from '@gef/protos';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { jsonTextBytes } from '@gef/common';
import { caller, logRows, serviceFixture, type ServiceFixture } from './support/service-fixture';

const L = execution.LogLevel;
const S = execution.ExecutionStatus;

/** The line text one answer holds at most, as its JSON strings take it (CONTRACT §6: pages stop early beyond it). */
const budget = 8 * 1024 * 1024;
const lineChars = 32 * 1024;

/** Bytes a text takes inside a JSON string (escapes included, quotes not). */
const jsonBytes = (text: string) => Buffer.byteLength(JSON.stringify(text)) - 2;
const textBytes = (lines: { text: string }[]) => lines.reduce((n, l) => n + jsonBytes(l.text), 0);

describe('jsonTextBytes', () => {
  it('counts what JSON.stringify writes for a text, escapes and multi-byte characters included', () => {
    const all = Array.from({ length: 0x80 }, (_, c) => String.fromCharCode(c)).join('');
    for (const text of ['', 'plain', 'a "quoted" \\ path', all, 'é€😀\n\t\r\b\f\u000b\u001f', '\u0001'.repeat(1000)]) {
      expect(jsonTextBytes(text, Buffer.byteLength(text))).toBe(jsonBytes(text));
    }
  });
});

// Reads of log lines over a real PostgreSQL: long lines make pages stop on bytes, not only on count.
describe('log reads within a byte budget', () => {
  let pg: TestPostgres;
  let f: ServiceFixture;

  beforeAll(async () => {
    pg = await startTestPostgres('gef_execution_log_budget_test');
    f = await serviceFixture(pg.url);
  }, 120_000);

  afterAll(async () => {
    await f?.close();
    await pg?.stop();
  }, 60_000);

  /** A running execution of a new user, and its runner's token. */
  async function running() {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId });
    const e = (await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} })).execution!;
    await f.dispatch();
    const grant = await f.client.startExecutionAttempt({ executionId: e.id, attempt: 1, runner: 'runner-test' });
    return { userId, id: e.id, token: grant.runnerToken };
  }

  /** Appends `texts` as the runner does, in batches of about 1 MiB of text (its batch size). */
  async function write(run: { id: string; token: string }, texts: string[], perBatch = (1024 * 1024) / lineChars, firstSeq = 0) {
    for (let from = 0; from < texts.length; from += perBatch) {
      const lines = texts.slice(from, from + perBatch).map((text, i) => ({ text, level: L.INFO, seq: firstSeq + from + i }));
      await f.client.appendExecutionLogs({ id: run.id, executionToken: run.token, lines });
    }
  }

  /** 260 lines of 32 KiB, then 80 of 32 Ki control characters (6 bytes each in JSON), then 260 more plain ones: 28 MiB of JSON text. */
  const longTexts = () => [
    ...Array.from({ length: 260 }, (_, i) => `${i}:`.padEnd(lineChars, 'x')),
    ...Array.from({ length: 80 }, (_, i) => `${260 + i}:`.padEnd(lineChars, '\u0001')),
    ...Array.from({ length: 260 }, (_, i) => `${340 + i}:`.padEnd(lineChars, 'y')),
  ];

  it('stops a page of long lines at 8 MiB of JSON text (control characters counted escaped), continued by last-id, each line once', async () => {
    const run = await running();
    const texts = longTexts();
    await write(run, texts);
    const read = (lastId?: bigint) => f.client.listExecutionLogs({ id: run.id, caller: caller(run.userId), ...(lastId !== undefined ? { lastId } : {}) });
    const pages = [logRows(await read())];
    while (pages.at(-1)!.length > 0 && pages.length < 100) pages.push(logRows(await read(BigInt(pages.at(-1)!.at(-1)!.id))));
    const all = pages.flat();
    expect(all.map((l) => l.text)).toEqual([expect.stringMatching(/^Attempt 1 started/), ...texts]);
    for (const page of pages.slice(0, -1)) {
      expect(page.length).toBeGreaterThan(0);
      expect(textBytes(page)).toBeLessThanOrEqual(budget);
    }
    // The escaped lines count as their JSON takes them (6 bytes a character): 8 MiB holds 42
    // of them, where 256 would fit counted raw. (Where a page starts depends on the instants
    // the lines were written at: a page stopping on bytes ends on a whole one.)
    const escapedPerPage = pages.map((p) => p.filter((l) => l.text.endsWith('\u0001')).length);
    expect(Math.max(...escapedPerPage)).toBeLessThanOrEqual(42);
    expect(escapedPerPage.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
  }, 120_000);

  it('ends every page read by start on a whole instant, and polling by start misses no line', async () => {
    const run = await running();
    const texts = longTexts();
    await write(run, texts);
    const pages = [logRows(await f.client.listExecutionLogs({ id: run.id, caller: caller(run.userId) }))];
    while (pages.at(-1)!.length > 0 && pages.length < 100) {
      const last = pages.at(-1)!.at(-1)!;
      pages.push(logRows(await f.client.listExecutionLogs({ id: run.id, caller: caller(run.userId), start: timestampFromDate(new Date(last.registerMs)) })));
    }
    // A page may run past the budget only by the rest of one instant (one runner batch, 1 MiB of text at most, 6 in JSON).
    for (const page of pages) expect(textBytes(page)).toBeLessThanOrEqual(budget + 6 * 1024 * 1024 + 6 * lineChars);
    const all = pages.flat();
    expect(all.map((l) => l.text)).toEqual([expect.stringMatching(/^Attempt 1 started/), ...texts]);
    expect(pages.length).toBeGreaterThan(3);
    for (let i = 1; i < pages.length - 1; i++) expect(pages[i]!.at(0)!.registerMs).toBeGreaterThan(pages[i - 1]!.at(-1)!.registerMs);
  }, 120_000);

  it('embeds at most 8 MiB of line text in an execution and in a list, at least one line each', async () => {
    const first = await running();
    await write(first, longTexts());
    const userId = first.userId;
    // A second run of the same user, with the same log.
    const script = [...f.scripts.scripts.values()].find((s) => s.scriptUserId === userId)!;
    const e2 = (await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} })).execution!;
    await f.dispatch();
    const grant = await f.client.startExecutionAttempt({ executionId: e2.id, attempt: 1, runner: 'runner-test' });
    await write({ id: e2.id, token: grant.runnerToken }, longTexts());

    const one = (await f.client.getExecution({ id: first.id, caller: caller(userId), includeLogs: true })).execution!;
    expect(one.logs.length).toBeGreaterThan(1);
    expect(textBytes(one.logs)).toBeLessThanOrEqual(budget);
    expect(one.logs.map((l) => l.text).slice(1)).toEqual(longTexts().slice(0, one.logs.length - 1));

    const list = await f.client.listExecutions({ caller: caller(userId), perPage: 100, includeLogs: true });
    expect(list.executions).toHaveLength(2);
    expect(textBytes(list.executions.flatMap((e) => e.logs))).toBeLessThanOrEqual(budget);
    for (const e of list.executions) expect(e.logs.length).toBeGreaterThan(0);
    const whole = await f.client.listExecutions({ caller: caller(userId), includeLogs: true });
    expect(textBytes(whole.executions.flatMap((e) => e.logs))).toBeLessThanOrEqual(budget);
  }, 120_000);

  it('streams a long log whole through WatchExecution', async () => {
    const run = await running();
    const texts = longTexts();
    await write(run, texts);
    await f.client.completeExecutionAttempt({ executionId: run.id, runnerToken: run.token, status: S.FINISHED, resultsJson: 'null', lines: [] });
    const seen: string[] = [];
    for await (const m of f.client.watchExecution({ id: run.id, caller: caller(run.userId) })) {
      if (m.event.case === 'log') seen.push(m.event.value.text);
    }
    expect(seen).toEqual([expect.stringMatching(/^Attempt 1 started/), ...texts]);
  }, 120_000);

  it('keeps pages of short lines as they were: 1,000 from the start, 5,000 after a cursor', async () => {
    const run = await running();
    // Each line its own instant, so no page is cut back to a whole instant.
    await f.orm.em.getConnection().execute(
      `insert into execution_log (execution_id, attempt, seq, level, text, register_date)
       select ?, 1, n, 'INFO', 'short line ' || n, now() + make_interval(secs => n) from generate_series(1, 7000) n`,
      [run.id],
    );
    // A full page leaves out its last instant (the next line might share it): here one line.
    const first = logRows(await f.client.listExecutionLogs({ id: run.id, caller: caller(run.userId) }));
    expect(first).toHaveLength(999);
    const next = logRows(await f.client.listExecutionLogs({ id: run.id, caller: caller(run.userId), lastId: BigInt(first.at(-1)!.id) }));
    expect(next).toHaveLength(4999);
    expect(next[0]!.text).toBe('short line 999');
  }, 120_000);
});
