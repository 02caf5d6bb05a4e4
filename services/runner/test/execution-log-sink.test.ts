import { createLogger } from '@gef/common';
import { ExecutionLogSink, type LogBatch } from '../src/execution-log/execution-log-sink';

const logger = createLogger('test', 'silent');
const ok = { stop: false, stopReason: '', status: 'RUNNING' };

describe('ExecutionLogSink', () => {
  it('numbers lines from 0 at the source and sends them in order, in batches, with the latest progress', async () => {
    const batches: LogBatch[] = [];
    const sink = new ExecutionLogSink(async (b) => {
      batches.push(b);
      return ok;
    }, logger, { maxBatch: 2, flushMs: 10 });
    sink.line('INFO', 'a');
    sink.setProgress(10);
    sink.setProgress(12.5);
    sink.line('DEBUG', 'b');
    sink.line('ERROR', 'c');
    await new Promise((r) => setTimeout(r, 50));
    const rest = await sink.close();
    expect(batches.flatMap((b) => b.lines.map((l) => [l.seq, l.level, l.text]))).toEqual([
      [0, 'INFO', 'a'],
      [1, 'DEBUG', 'b'],
      [2, 'ERROR', 'c'],
    ]);
    expect(batches[0]!.progress).toBe(12.5);
    expect(rest).toEqual({ lines: [] });
  });

  it('sends a failed batch again with the same numbers (the service stores each number once)', async () => {
    const attempts: number[][] = [];
    let failures = 2;
    const sink = new ExecutionLogSink(async (b) => {
      attempts.push(b.lines.map((l) => l.seq));
      if (failures-- > 0) throw new Error('unavailable');
      return ok;
    }, logger, { flushMs: 5 });
    sink.line('INFO', 'x');
    sink.line('INFO', 'y');
    await sink.flush();
    expect(attempts).toEqual([
      [0, 1],
      [0, 1],
      [0, 1],
    ]);
  });

  it('hands back what could not be sent, for the outcome to carry', async () => {
    const sink = new ExecutionLogSink(async () => {
      throw new Error('down');
    }, logger, { flushMs: 100_000 });
    sink.line('INFO', 'kept');
    sink.setProgress(50);
    const rest = await sink.close();
    expect(rest).toEqual({ lines: [{ seq: 0, level: 'INFO', text: 'kept' }], progress: 50 });
  }, 20_000);

  it('tells when the service says the attempt must stop', async () => {
    const reasons: string[] = [];
    const sink = new ExecutionLogSink(async () => ({ stop: true, stopReason: 'cancel', status: 'CANCELLING' }), logger, { flushMs: 5, onStop: (r) => reasons.push(r) });
    sink.line('INFO', 'x');
    await sink.flush();
    expect(reasons).toEqual(['cancel']);
  });

  it('drops lines beyond the limit with one note', async () => {
    const sent: string[] = [];
    const sink = new ExecutionLogSink(async (b) => {
      sent.push(...b.lines.map((l) => l.text));
      return ok;
    }, logger, { flushMs: 5, maxLines: 100 });
    for (let i = 0; i < 150; i++) sink.line('INFO', `line ${i}`);
    await sink.flush();
    expect(sent).toHaveLength(101);
    expect(sent.at(-1)).toBe('The log reached 100 lines; later lines of this attempt are dropped');
  });

  it('drops lines beyond the byte limit with one note, as beyond the line limit: exactly at it', async () => {
    const sent: string[] = [];
    const sink = new ExecutionLogSink(async (b) => {
      sent.push(...b.lines.map((l) => l.text));
      return ok;
    }, logger, { flushMs: 5, maxBytes: 1000 });
    for (let i = 0; i < 150; i++) sink.line('INFO', 'x'.repeat(10));
    await sink.flush();
    expect(sent).toHaveLength(101);
    expect(sent.slice(0, 100).every((t) => t === 'x'.repeat(10))).toBe(true);
    expect(sent.at(-1)).toBe('The log reached 1000 bytes; later lines of this attempt are dropped');
  });

  it('drops the line that would go past the byte limit and every later one (even one that would fit), bytes counted in UTF-8', async () => {
    const sent: string[] = [];
    const sink = new ExecutionLogSink(async (b) => {
      sent.push(...b.lines.map((l) => l.text));
      return ok;
    }, logger, { flushMs: 5, maxBytes: 1024 ** 2 });
    // 'é' is two bytes: 512 KiB of them (1 MiB) would not fit after the first line.
    sink.line('INFO', 'first');
    sink.line('INFO', 'é'.repeat(32 * 1024));
    for (let i = 0; i < 15; i++) sink.line('INFO', 'é'.repeat(32 * 1024));
    sink.line('INFO', 'small, but after the limit');
    await sink.flush();
    expect(sent.slice(0, -1).map((t) => t.length)).toEqual([5, ...Array.from({ length: 15 }, () => 32 * 1024)]);
    expect(sent.at(-1)).toBe('The log reached 1 MiB; later lines of this attempt are dropped');
    // One note, whichever limit came first.
    sink.line('INFO', 'more');
    await sink.flush();
    expect(sent.filter((t) => t.startsWith('The log reached'))).toHaveLength(1);
  });

  it('counts the bytes of the lines not yet delivered, and asks the source to wait above its bound until half of them went', async () => {
    let release!: () => void;
    let held = new Promise<void>((r) => (release = r));
    const sink = new ExecutionLogSink(async () => {
      await held;
      return ok;
    }, logger, { flushMs: 5, maxBatch: 10, maxPendingBytes: 1000 });
    expect(sink.backpressure()).toBeUndefined();
    for (let i = 0; i < 9; i++) sink.line('INFO', 'x'.repeat(100));
    expect(sink.pendingBytes).toBe(900);
    expect(sink.backpressure()).toBeUndefined();
    for (let i = 0; i < 21; i++) sink.line('INFO', 'y'.repeat(100));
    expect(sink.pendingBytes).toBe(3000);
    let resumed = false;
    void sink.backpressure()!.then(() => (resumed = true));
    await new Promise((r) => setTimeout(r, 30));
    // The first batch (10 lines) is on its way and counts until it is delivered.
    expect([resumed, sink.pendingBytes]).toEqual([false, 3000]);
    release();
    held = new Promise<void>((r) => (release = r));
    await new Promise((r) => setTimeout(r, 30));
    // 2000 left: still above 500 (half the bound).
    expect([resumed, sink.pendingBytes]).toEqual([false, 2000]);
    release();
    held = Promise.resolve();
    await new Promise((r) => setTimeout(r, 50));
    expect([resumed, sink.pendingBytes, sink.backpressure()]).toEqual([true, 0, undefined]);
    await sink.close();
  });

  it('lets a waiting source go when the sink is closed', async () => {
    const sink = new ExecutionLogSink(() => new Promise<never>(() => undefined), logger, { flushMs: 5, maxPendingBytes: 10 });
    sink.line('INFO', 'x'.repeat(100));
    const waiting = sink.backpressure();
    expect(waiting).toBeDefined();
    const closing = sink.close();
    await expect(waiting).resolves.toBeUndefined();
    void closing;
  });

  it('keeps batches under their character budget, one batch on the wire at a time, every line once and in order', async () => {
    const batches: number[][] = [];
    let inFlight = 0;
    let most = 0;
    const sink = new ExecutionLogSink(async (b) => {
      inFlight++;
      most = Math.max(most, inFlight);
      batches.push(b.lines.map((l) => l.seq));
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      return ok;
    }, logger, { maxBatch: 1000, maxBatchChars: 100, flushMs: 5 });
    for (let i = 0; i < 95; i++) sink.line('INFO', 'x'.repeat(10));
    // One line longer than the budget still goes, alone.
    sink.line('INFO', 'y'.repeat(500));
    for (let i = 0; i < 5; i++) sink.line('INFO', 'z');
    await new Promise((r) => setTimeout(r, 300));
    await sink.close();
    expect(most).toBe(1);
    expect(batches.flat()).toEqual(Array.from({ length: 101 }, (_, i) => i));
    expect(batches.every((b) => b.length <= 10 || b.length === 1)).toBe(true);
    expect(batches.some((b) => b.length === 1 && b[0] === 95)).toBe(true);
  });

  it("replaces the run's credentials with a mark in every line before it is kept, long lines too", async () => {
    const sent: string[] = [];
    const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzY29wZSI6ImV4ZWN1dGlvbiJ9.c2lnbmF0dXJl';
    const runnerToken = 'eyJhbGciOiJIUzI1NiJ9.eyJzY29wZSI6InJ1bm5lciJ9.c2lnbmF0dXJl';
    const sink = new ExecutionLogSink(async (b) => {
      sent.push(...b.lines.map((l) => l.text));
      return ok;
    }, logger, { flushMs: 5, secrets: [token, runnerToken, ''] });
    sink.line('INFO', `environ({'API_TOKEN': '${token}', 'HOME': '/run'})`);
    sink.line('WARNING', `${runnerToken} and ${token}, ${token}`);
    // Cut at 32 KiB characters: the token at the cut is masked before it.
    sink.line('INFO', `${'x'.repeat(32 * 1024 - 10)}${token}`);
    sink.line('INFO', 'nothing secret');
    const rest = await sink.close();
    const texts = [...sent, ...rest.lines.map((l) => l.text)];
    expect(texts.filter((t) => t.includes(token) || t.includes(runnerToken) || t.includes(token.slice(0, 10)))).toEqual([]);
    expect(texts.slice(0, 2)).toEqual(["environ({'API_TOKEN': '[redacted]', 'HOME': '/run'})", '[redacted] and [redacted], [redacted]']);
    expect(texts[3]).toBe('nothing secret');
  });

  it('splits lines into requests the service takes: at most its lines and characters per request, one empty request for none', () => {
    const sink = new ExecutionLogSink(async () => ok, logger, { maxBatch: 3, maxBatchChars: 10 });
    const lines = (texts: string[]) => texts.map((text, seq) => ({ seq, level: 'INFO' as const, text }));
    const seqs = (requests: { seq: number }[][]) => requests.map((r) => r.map((l) => l.seq));
    expect(seqs(sink.inRequests(lines(['a', 'b', 'c', 'd', 'e', 'f', 'g'])))).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
    expect(seqs(sink.inRequests(lines(['aaaa', 'bbbb', 'cccc', 'd'.repeat(30), 'e'])))).toEqual([[0, 1], [2], [3], [4]]);
    expect(sink.inRequests([])).toEqual([[]]);
    // The default: the 10,000 lines the service takes per request.
    const many = new ExecutionLogSink(async () => ok, logger);
    expect(many.inRequests(lines(Array.from({ length: 25_000 }, () => 'x'))).map((r) => r.length)).toEqual([10_000, 10_000, 5_000]);
  });

  it('sends a progress change made while a batch was on its way', async () => {
    const batches: LogBatch[] = [];
    let release!: () => void;
    const first = new Promise<void>((r) => (release = r));
    const sink = new ExecutionLogSink(async (b) => {
      batches.push(b);
      if (batches.length === 1) await first;
      return ok;
    }, logger, { flushMs: 5 });
    sink.line('INFO', 'a');
    await new Promise((r) => setTimeout(r, 20));
    sink.setProgress(40);
    release();
    await new Promise((r) => setTimeout(r, 50));
    expect(batches.map((b) => b.progress)).toEqual([undefined, 40]);
    await sink.close();
  });
});
