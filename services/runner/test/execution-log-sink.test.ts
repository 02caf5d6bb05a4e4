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
});
