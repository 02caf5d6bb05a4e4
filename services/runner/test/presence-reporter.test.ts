import { createLogger } from '@gef/common';
import { PresenceReporter, type PresenceReport } from '../src/presence-reporter';

const logger = createLogger('runner-test', 'silent');

describe('PresenceReporter', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  /** A reporter whose service answers after `answer` (which may throw, or never settle until abandoned). */
  function reporter(options: { busy?: () => number | undefined; answer?: (report: PresenceReport, signal: AbortSignal) => Promise<void>; everySeconds?: number } = {}) {
    const sent: PresenceReport[] = [];
    const r = new PresenceReporter({
      send: async (report, signal) => {
        await options.answer?.(report, signal);
        sent.push(report);
        return { everySeconds: options.everySeconds ?? 15 };
      },
      runner: 'host-a',
      slots: 8,
      busy: options.busy ?? (() => 2),
      logger,
    });
    return { r, sent };
  }

  /** A call the service never answers: it fails only when abandoned (its signal aborts). */
  const unanswered = (signal: AbortSignal) => new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(new Error('abandoned')), { once: true }));

  it('reports at start and then as often as the service says, with the same process id', async () => {
    const { r, sent } = reporter({ everySeconds: 5 });
    r.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(sent).toEqual([{ instance: r.instance, runner: 'host-a', slots: 8, busy: 2, stopping: false }]);
    await jest.advanceTimersByTimeAsync(4999);
    expect(sent).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(sent).toHaveLength(2);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(sent).toHaveLength(4);
    expect(new Set(sent.map((s) => s.instance))).toEqual(new Set([r.instance]));
    await r.stop();
  });

  it('reports nothing while its worker is not running, and again once it is', async () => {
    const worker: { busy?: number } = {};
    const { r, sent } = reporter({ busy: () => worker.busy });
    r.start();
    await jest.advanceTimersByTimeAsync(30_000);
    expect(sent).toEqual([]);
    // Once it runs, within a second, then at the usual pace.
    worker.busy = 0;
    await jest.advanceTimersByTimeAsync(1000);
    expect(sent.map((s) => s.busy)).toEqual([0]);
    await jest.advanceTimersByTimeAsync(14_999);
    expect(sent).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(sent).toHaveLength(2);
    await r.stop();
  });

  it('keeps reporting after failed reports', async () => {
    let failing = true;
    const { r, sent } = reporter({
      answer: async () => {
        if (failing) throw new Error('unavailable');
      },
    });
    r.start();
    await jest.advanceTimersByTimeAsync(45_000);
    expect(sent).toEqual([]);
    failing = false;
    await jest.advanceTimersByTimeAsync(15_000);
    expect(sent).toHaveLength(1);
    await r.stop();
  });

  it('abandons a report in flight when it stops, says it stops, and reports no more', async () => {
    let abandoned = false;
    const { r, sent } = reporter({
      answer: async (report, signal) => {
        if (report.stopping) return;
        signal.addEventListener('abort', () => (abandoned = true), { once: true });
        await unanswered(signal);
      },
    });
    r.start();
    await jest.advanceTimersByTimeAsync(0);
    await r.stop();
    expect(abandoned).toBe(true);
    expect(sent.map((s) => s.stopping)).toEqual([true]);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(sent).toHaveLength(1);
  });

  it('stops when the service does not answer', async () => {
    const { r } = reporter({ answer: (_report, signal) => unanswered(signal) });
    r.start();
    await jest.advanceTimersByTimeAsync(0);
    // The last report gives up on its own (its signal times out): the shutdown goes on.
    await expect(r.stop()).resolves.toBeUndefined();
  });
});
