import { randomUUID } from 'node:crypto';
import type { Logger } from '@gef/common';

/** What a runner says of itself to the execution service (ReportRunner). */
export interface PresenceReport {
  instance: string;
  runner: string;
  slots: number;
  busy: number;
  stopping: boolean;
}

export interface PresenceOptions {
  /** Sends a report; answers how often to report (seconds). */
  send: (report: PresenceReport, signal: AbortSignal) => Promise<{ everySeconds: number }>;
  /** The runner's host name. */
  runner: string;
  /** Runs and builds it takes at once. */
  slots: number;
  /** Runs and builds in flight; undefined while its worker is not running (nothing is reported then). */
  busy: () => number | undefined;
  logger: Logger;
  /** How often to report until the service says (ms). */
  everyMs?: number;
}

/** Longest a report may take. */
const sendTimeoutMs = 5000;

/** Longest the last report (stopping) may take: a runner's shutdown does not wait on an absent service. */
const stopTimeoutMs = 2000;

/** How often a worker that is not running is looked at again. */
const workerCheckMs = 1000;

/**
 * Reports the runner to the execution service at start and every few seconds while its
 * worker runs, and as stopping when it stops, so that a run handed to the runners while none
 * is online says so. A runner whose worker cannot reach Temporal reports nothing: it takes no
 * runs. Reports that fail are logged once, until one succeeds again.
 */
export class PresenceReporter {
  /** This process, as the service knows it. */
  readonly instance = randomUUID();
  private everyMs: number;
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private inFlight: AbortController | undefined;
  private stopped = false;
  private failing = false;

  constructor(private readonly options: PresenceOptions) {
    this.everyMs = options.everyMs ?? 15_000;
  }

  start(): void {
    this.schedule(0);
  }

  /**
   * Says the runner stops: a report in flight is abandoned first, and the service ignores any
   * report of this process that reaches it after this one. Takes at most a few seconds, the
   * service away or not.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.inFlight?.abort();
    await this.sending;
    await this.options
      .send(this.report(0, true), AbortSignal.timeout(stopTimeoutMs))
      .catch((err: unknown) => this.options.logger.warn({ err: String(err) }, 'could not tell the execution service that the runner stops'));
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      let sent = false;
      this.sending = this.tick()
        .then((done) => void (sent = done))
        .finally(() => {
          this.sending = undefined;
          // A worker not running yet (starting, or reconnecting to Temporal) is looked at
          // again each second, so that a runner counts as online as soon as it takes runs.
          this.schedule(sent ? this.everyMs : Math.min(this.everyMs, workerCheckMs));
        });
    }, ms);
    this.timer.unref();
  }

  /** One report; false when there was none to send (the worker is not running). */
  private async tick(): Promise<boolean> {
    const busy = this.options.busy();
    if (busy === undefined || this.stopped) return false;
    const aborter = new AbortController();
    this.inFlight = aborter;
    try {
      const { everySeconds } = await this.options.send(this.report(busy, false), AbortSignal.any([aborter.signal, AbortSignal.timeout(sendTimeoutMs)]));
      if (Number.isInteger(everySeconds) && everySeconds >= 1 && everySeconds <= 300) this.everyMs = everySeconds * 1000;
      if (this.failing) this.options.logger.info('reporting to the execution service again');
      this.failing = false;
    } catch (err) {
      if (this.stopped) return true;
      if (!this.failing) this.options.logger.warn({ err: String(err) }, 'could not report to the execution service: runs handed to the runners may say that none is online');
      this.failing = true;
    } finally {
      this.inFlight = undefined;
    }
    return true;
  }

  private report(busy: number, stopping: boolean): PresenceReport {
    return { instance: this.instance, runner: this.options.runner, slots: this.options.slots, busy, stopping };
  }
}
