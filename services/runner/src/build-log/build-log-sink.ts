import type { Logger } from '@gef/common';
import { withoutUrlCredentials } from '../environments/url-credentials';

export interface BuildLogSinkOptions {
  /** Lines sent at once at most. */
  maxBatch?: number;
  /** How long a line may wait for company before it is sent. */
  flushIntervalMs?: number;
  /** Attempts per batch before it is dropped (a build never fails for its log). */
  attempts?: number;
  /** Lines of the build's tools kept at most (a package's build code writes what it likes); one more line says the rest was left out. */
  maxLines?: number;
}

/** Lines of one build's log at most, by default. */
export const maxBuildLogLines = 20_000;

/**
 * Batches build log lines and sends them in order through `send` (the script service's
 * AppendBuildLog RPC): when a batch is full, or shortly after the first waiting line. Lines
 * are numbered from 1 (`firstSeq`, the number of a batch's first line): a batch sent again
 * after its answer was lost is stored once.
 */
export class BuildLogSink {
  private buffer: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private readonly maxBatch: number;
  private readonly flushIntervalMs: number;
  private readonly attempts: number;
  private readonly maxLines: number;
  private taken = 0;
  /** Lines given a number so far. */
  private numbered = 0;

  constructor(
    private readonly send: (lines: string[], firstSeq: number) => Promise<void>,
    private readonly logger: Logger,
    options: BuildLogSinkOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 100;
    this.flushIntervalMs = options.flushIntervalMs ?? 250;
    this.attempts = options.attempts ?? 3;
    this.maxLines = options.maxLines ?? maxBuildLogLines;
  }

  /** A line of the build's tools (venv, pip, a package's build), kept up to `maxLines`. */
  output(text: string): void {
    if (this.taken > this.maxLines) return;
    this.taken++;
    this.line(this.taken > this.maxLines ? `the build's output beyond ${this.maxLines} lines is left out of its log` : text);
  }

  /** A line of the runner's own, always kept. */
  line(text: string): void {
    this.buffer.push(withoutUrlCredentials(text));
    if (this.buffer.length >= this.maxBatch) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.flushIntervalMs);
  }

  /** Sends what is waiting (in order after earlier batches). */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffer.length === 0) return this.chain;
    const batch = this.buffer;
    this.buffer = [];
    const firstSeq = this.numbered + 1;
    this.numbered += batch.length;
    this.chain = this.chain.then(() => this.deliver(batch, firstSeq));
    return this.chain;
  }

  /** Sends everything and waits for it. */
  async close(): Promise<void> {
    await this.flush();
  }

  private async deliver(batch: string[], firstSeq: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.send(batch, firstSeq);
        return;
      } catch (err) {
        if (attempt >= this.attempts) {
          this.logger.warn({ err: String(err), lines: batch.length }, 'build log lines dropped');
          return;
        }
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }
}
