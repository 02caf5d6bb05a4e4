import pino from 'pino';
import { BuildLogSink } from '../src/build-log/build-log-sink';
import { EnvironmentError } from '../src/environments/environment-error';
import { withoutUrlCredentials } from '../src/environments/url-credentials';

const logger = pino({ level: 'silent' });

describe('BuildLogSink', () => {
  it('sends full batches at once and the rest after a short wait, in order', async () => {
    const sent: string[][] = [];
    const sink = new BuildLogSink(async (lines) => void sent.push(lines), logger, { maxBatch: 3, flushIntervalMs: 20 });
    for (let i = 1; i <= 7; i++) sink.line(`line ${i}`);
    expect(sent).toEqual([]); // the first batch is on its way
    await new Promise((r) => setTimeout(r, 60));
    expect(sent).toEqual([['line 1', 'line 2', 'line 3'], ['line 4', 'line 5', 'line 6'], ['line 7']]);
    await sink.close();
  });

  it('keeps order when sends are slow and retries a failed send, with the same numbers', async () => {
    const sent: string[] = [];
    const numbers: number[] = [];
    let failures = 1;
    const sink = new BuildLogSink(
      async (lines, firstSeq) => {
        numbers.push(firstSeq);
        await new Promise((r) => setTimeout(r, 5));
        if (failures-- > 0) throw new Error('unavailable');
        sent.push(...lines);
      },
      logger,
      { maxBatch: 2, flushIntervalMs: 5 },
    );
    for (let i = 1; i <= 5; i++) sink.line(String(i));
    await sink.close();
    expect(sent).toEqual(['1', '2', '3', '4', '5']);
    // Each batch's first line's number; the failed first batch sent again with its own.
    expect(numbers).toEqual([1, 1, 3, 5]);
  });

  it("keeps a build's tool output up to its bound, says so once, and keeps the runner's own lines after it", async () => {
    const sent: string[] = [];
    const sink = new BuildLogSink(async (lines) => void sent.push(...lines), logger, { maxBatch: 50, flushIntervalMs: 5, maxLines: 100 });
    for (let i = 0; i < 1000; i++) sink.output(`pip ${i}`);
    sink.line('environment ready');
    await sink.close();
    expect(sent).toHaveLength(102);
    expect(sent.slice(0, 100)).toEqual(Array.from({ length: 100 }, (_, i) => `pip ${i}`));
    expect(sent.slice(100)).toEqual(["the build's output beyond 100 lines is left out of its log", 'environment ready']);
  });

  it("masks the credentials of every URL in a line (a package index's, a proxy's), and failure reasons' too", async () => {
    const sent: string[] = [];
    const sink = new BuildLogSink(async (lines) => void sent.push(...lines), logger, { flushIntervalMs: 5 });
    sink.output('LEAK PIP_INDEX_URL=http://pipuser:s3cret@127.0.0.1:23917/simple HTTPS_PROXY=http://px:pw@proxy:3128');
    sink.line('Collecting pkg@ git+https://oauth2:tok3n@git.example.org/x.git and mail to someone@example.org');
    await sink.close();
    expect(sent).toEqual([
      'LEAK PIP_INDEX_URL=http://****@127.0.0.1:23917/simple HTTPS_PROXY=http://****@proxy:3128',
      'Collecting pkg@ git+https://****@git.example.org/x.git and mail to someone@example.org',
    ]);
    // A password holding an @, a proxy written without a scheme; an ssh-style address stays.
    expect(withoutUrlCredentials('http://u:p@ss@host/x HTTPS_PROXY=user:pw@proxy.example:3128 git@github.com:org/repo.git')).toBe(
      'http://****@host/x HTTPS_PROXY=****@proxy.example:3128 git@github.com:org/repo.git',
    );
    expect(new EnvironmentError('pip install failed: RuntimeError: index=https://u:p@idx.example.org/simple', false).message).toBe(
      'pip install failed: RuntimeError: index=https://****@idx.example.org/simple',
    );
  });

  it('drops a batch that keeps failing instead of failing the build', async () => {
    const sink = new BuildLogSink(() => Promise.reject(new Error('down')), logger, { attempts: 2 });
    sink.line('lost');
    await expect(sink.close()).resolves.toBeUndefined();
  });
});
