import { createLogger } from '@gef/common';
import { ExecutionLogSink, type LogBatch } from '../src/execution-log/execution-log-sink';
import { Fixture, isRoot } from './support/run-script-fixture';

const logger = createLogger('test', 'silent');
const MiB = 1024 ** 2;

// A script that writes much faster than its lines are delivered: the runner stops reading its
// output (the channel, stdout and stderr) while the lines waiting to be sent exceed the sink's
// bound, so the script is slowed down instead of the runner's memory growing with its output.
describe.each([
  ['spawned', false],
  ['forked by the fork server', true],
])('log backpressure, an interpreter %s', (_name, forked) => {
  let fixture: Fixture;

  beforeAll(async () => {
    fixture = await new Fixture(isRoot ? 'on' : 'off', forked).init();
  });
  afterAll(() => fixture.cleanup());

  it('keeps the bytes waiting in the runner bounded while a script writes 200 MB of lines, and delivers every line in order', async () => {
    // 100 MB through the logger (the channel), 50 MB each straight to fds 1 and 2.
    const main = [
      'import os',
      'def run(params, logger):',
      '    pad = "x" * 990',
      '    for i in range(100000):',
      '        logger.info("c %07d %s", i, pad)',
      '        if i % 2 == 0:',
      '            os.write(1, b"o %07d %s\\n" % (i // 2, pad.encode()))',
      '        else:',
      '            os.write(2, b"e %07d %s\\n" % (i // 2, pad.encode()))',
      '    return "OK"',
    ].join('\n');
    const bound = 4 * MiB;
    let received = 0;
    let delivered = 0;
    let most = 0;
    let mostSeen = 0;
    const counts = { c: 0, o: 0, e: 0 };
    let inOrder = true;
    const sink = new ExecutionLogSink(
      async (batch: LogBatch) => {
        // A slow execution service: 40 ms a batch of at most 1 MiB (about 25 MB/s).
        await new Promise((r) => setTimeout(r, 40));
        for (const line of batch.lines) {
          delivered += Buffer.byteLength(line.text);
          const kind = line.text[0] as 'c' | 'o' | 'e';
          if (kind in counts) {
            if (Number(line.text.slice(2, 9)) !== counts[kind]) inOrder = false;
            counts[kind]++;
          }
        }
        return { stop: false, stopReason: '', status: 'RUNNING' };
      },
      logger,
      { flushMs: 10, maxBytes: 512 * MiB, maxPendingBytes: bound },
    );
    const started = Date.now();
    const r = await fixture.run(
      { 'configuration.json': '{"name":"backpressure"}', 'src/main.py': main },
      {
        timeoutMs: 120_000,
        job: {
          onLog: (level, text) => {
            sink.line(level, text);
            received += Buffer.byteLength(text);
            // What the sink holds: received, not yet delivered (measured here, and as it says).
            most = Math.max(most, received - delivered);
            mostSeen = Math.max(mostSeen, sink.pendingBytes);
          },
          backpressure: () => sink.backpressure(),
        },
      },
    );
    const rest = await sink.close();
    const seconds = (Date.now() - started) / 1000;
    process.stdout.write(`backpressure (${forked ? 'forked' : 'spawned'}): ${(received / 1e6).toFixed(0)} MB in ${seconds.toFixed(1)} s, at most ${(most / MiB).toFixed(2)} MiB waiting in the sink\n`);
    expect(r.outcome).toEqual({ kind: 'result', resultJson: '"OK"' });
    expect(rest.lines).toEqual([]);
    expect(received).toBe(200 * 1e6);
    expect(delivered).toBe(received);
    expect(counts).toEqual({ c: 100000, o: 50000, e: 50000 });
    expect(inOrder).toBe(true);
    // The bound, plus what was read before the pause took hold (a chunk per stream).
    expect(most).toBeLessThan(bound + MiB);
    expect(mostSeen).toBe(most);
  }, 180_000);
});
