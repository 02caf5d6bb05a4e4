import type { Logger } from '@gef/common';

export interface BuildLogSinkOptions {
  /** Lines sent at once at most. */
  maxBatch?: number;
  /** How long a line may wait for company before it is sent. */
  flushIntervalMs?: number;
  /** Attempts per batch before it is dropped (a build never fails for its log). */
  attempts?: number;
}

/**
 * Batches build log lines and sends them in order through `send` (the script service's
 * AppendBuildLog RPC): when a batch is full, or shortly after the first waiting line.
 */
export class BuildLogSink {
  private buffer: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private readonly maxBatch: number;
  private readonly flushIntervalMs: number;
  private readonly attempts: number;

  constructor(
    private readonly send: (lines: string[]) => Promise<void>,
    private readonly logger: Logger,
    options: BuildLogSinkOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 100;
    this.flushIntervalMs = options.flushIntervalMs ?? 250;
    this.attempts = options.attempts ?? 3;
  }

  line(text: string): void {
    this.buffer.push(text);
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
    this.chain = this.chain.then(() => this.deliver(batch));
    return this.chain;
  }

  /** Sends everything and waits for it. */
  async close(): Promise<void> {
    await this.flush();
  }

  private async deliver(batch: string[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.send(batch);
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
