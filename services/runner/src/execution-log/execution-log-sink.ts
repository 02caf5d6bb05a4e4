import type { Logger } from '@gef/common';

export type LineLevel = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL';

/** A line numbered at its source: (execution, attempt, seq) is stored once. */
export interface NumberedLine {
  seq: number;
  level: LineLevel;
  text: string;
}

export interface LogBatch {
  lines: NumberedLine[];
  progress?: number;
}

/** What the execution service answered: whether the attempt should stop, and why. */
export interface BatchReply {
  stop: boolean;
  stopReason: string;
  /** The execution's status as the service has it. */
  status: string;
}

export interface ExecutionLogSinkOptions {
  /**
   * Lines sent at once at most (default: the 10,000 the service takes per request; a run
   * writing 100,000 lines was read back 7 % sooner than with batches of 5,000).
   */
  maxBatch?: number;
  /** Characters of text sent at once at most (a batch holds at least one line). */
  maxBatchChars?: number;
  /** How long a line (or a progress change) may wait for company. */
  flushMs?: number;
  /** Lines kept for the attempt; later ones are dropped with a note. */
  maxLines?: number;
  /**
   * Bytes of text (UTF-8) kept for the attempt: the line that would go past it and every later
   * one are dropped, with a note (as past `maxLines`; one note, whichever limit comes first).
   */
  maxBytes?: number;
  /**
   * Bytes of lines not yet delivered (waiting, or on their way) above which the source is
   * asked to wait (`backpressure()`) until half of them have gone.
   */
  maxPendingBytes?: number;
  /** Told when the service answers that the attempt should stop. */
  onStop?: (reason: string) => void;
  /**
   * Texts no line may carry (the run's credentials, which its script can print): each is
   * replaced with `[redacted]` in every line before it is kept.
   */
  secrets?: readonly string[];
}

/** What stands in a line for a secret of the run. */
const redactedMark = '[redacted]';

const maxLineLength = 32 * 1024;

/** A size as the note says it: whole MiB or KiB when it is, else bytes. */
function sizeText(bytes: number): string {
  if (bytes >= 1024 ** 2 && bytes % 1024 ** 2 === 0) return `${bytes / 1024 ** 2} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}

/**
 * A run's log on its way to the execution service: every line gets the attempt's next
 * sequence number here, at the source; lines and the latest progress go in batches, one
 * batch at a time and in order, each retried until it is delivered (the service stores a
 * numbered line once, so a batch delivered twice adds nothing). No database round trip per
 * line. What it holds is bounded: the attempt's lines by `maxLines` and `maxBytes`, and the
 * lines not yet delivered by `maxPendingBytes`, which the source keeps to by waiting for
 * `backpressure()` (the runner stops reading the script's output meanwhile).
 */
export class ExecutionLogSink {
  private buffer: NumberedLine[] = [];
  /** The UTF-8 size of each line of `buffer`. */
  private bufferSizes: number[] = [];
  private acceptedBytes = 0;
  /** A limit of the attempt was reached (and said): later lines are dropped. */
  private full = false;
  /** Bytes of lines waiting or on their way. */
  private pending = 0;
  private drainWaiters: (() => void)[] = [];
  private progressValue: number | undefined;
  private sentProgress: number | undefined;
  private nextSeq = 0;
  private accepted = 0;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  /** A delivery is under way or queued: it goes on while lines wait. */
  private delivering = false;
  private bufferedChars = 0;
  private closed = false;
  private readonly maxBatch: number;
  private readonly maxBatchChars: number;
  private readonly flushMs: number;
  private readonly maxLines: number;
  private readonly maxBytes: number;
  private readonly maxPendingBytes: number;
  private readonly secrets: readonly string[];

  constructor(
    private readonly send: (batch: LogBatch) => Promise<BatchReply>,
    private readonly logger: Logger,
    private readonly options: ExecutionLogSinkOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 10_000;
    this.maxBatchChars = options.maxBatchChars ?? 1024 * 1024;
    this.flushMs = options.flushMs ?? 200;
    this.maxLines = options.maxLines ?? 1_000_000;
    this.maxBytes = options.maxBytes ?? 256 * 1024 ** 2;
    this.maxPendingBytes = options.maxPendingBytes ?? 4 * 1024 ** 2;
    this.secrets = (options.secrets ?? []).filter((secret) => secret.length > 0);
  }

  /** The latest progress reported (for heartbeats). */
  get progress(): number | undefined {
    return this.progressValue;
  }

  /** Bytes of lines not yet delivered (waiting, or in the batch on its way). */
  get pendingBytes(): number {
    return this.pending;
  }

  line(level: LineLevel, text: string): void {
    if (this.full) return;
    const clipped = this.shown(text);
    const bytes = Buffer.byteLength(clipped);
    if (this.acceptedBytes + bytes > this.maxBytes) {
      this.stopAccepting(`The log reached ${sizeText(this.maxBytes)}; later lines of this attempt are dropped`);
      return;
    }
    this.accepted++;
    this.acceptedBytes += bytes;
    this.push(level, clipped, bytes);
    if (this.accepted === this.maxLines) this.stopAccepting(`The log reached ${this.maxLines} lines; later lines of this attempt are dropped`);
    else if (this.acceptedBytes === this.maxBytes) this.stopAccepting(`The log reached ${sizeText(this.maxBytes)}; later lines of this attempt are dropped`);
    this.schedule();
  }

  /**
   * A line of the runner's own (why the script stopped, which limit ended it, what comes
   * next): kept after the attempt's log is full, when the script's lines no longer are, and
   * not counted against its limits. A handful per attempt.
   */
  note(level: LineLevel, text: string): void {
    const clipped = this.shown(text);
    this.push(level, clipped, Buffer.byteLength(clipped));
    this.schedule();
  }

  /** A line as kept: secrets masked before it is cut, so a secret at the cut leaves no part of it behind. */
  private shown(text: string): string {
    const shown = this.redact(text);
    return shown.length > maxLineLength ? `${shown.slice(0, maxLineLength)}… [cut at ${maxLineLength} characters]` : shown;
  }

  /**
   * The text with each of the run's secrets in it replaced: its lines, and its results (JSON
   * text stays JSON: a token is base64url and dots, and the mark has no quote or backslash).
   */
  redact(text: string): string {
    let shown = text;
    for (const secret of this.secrets) if (shown.includes(secret)) shown = shown.replaceAll(secret, redactedMark);
    return shown;
  }

  /**
   * Lines in requests the service takes, as the batches go: at most `maxBatch` lines and
   * `maxBatchChars` characters each (a longer line alone), in order. One empty request for no lines.
   */
  inRequests(lines: NumberedLine[]): NumberedLine[][] {
    const requests: NumberedLine[][] = [];
    let current: NumberedLine[] = [];
    let chars = 0;
    for (const line of lines) {
      if (current.length > 0 && (current.length >= this.maxBatch || chars + line.text.length > this.maxBatchChars)) {
        requests.push(current);
        current = [];
        chars = 0;
      }
      current.push(line);
      chars += line.text.length;
    }
    requests.push(current);
    return requests;
  }

  /**
   * Undefined while the lines not yet delivered are within the bound; past it, a promise
   * that resolves once half of them have gone (or the sink is closed): until then the source
   * should give no more lines.
   */
  backpressure(): Promise<void> | undefined {
    if (this.closed || this.pending <= this.maxPendingBytes) return undefined;
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private push(level: LineLevel, text: string, bytes: number): void {
    this.buffer.push({ seq: this.nextSeq++, level, text });
    this.bufferSizes.push(bytes);
    this.bufferedChars += text.length;
    this.pending += bytes;
  }

  /** A limit was reached: the note, then nothing more of this attempt. */
  private stopAccepting(note: string): void {
    this.full = true;
    this.push('WARNING', note, Buffer.byteLength(note));
    this.schedule();
  }

  private drained(): void {
    if (this.drainWaiters.length === 0 || (!this.closed && this.pending > this.maxPendingBytes / 2)) return;
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  setProgress(value: number): void {
    if (this.progressValue === value) return;
    this.progressValue = value;
    this.schedule();
  }

  private schedule(): void {
    if (this.closed || this.delivering) return;
    if (this.buffer.length >= this.maxBatch || this.bufferedChars >= this.maxBatchChars) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.flushMs);
  }

  /** Sends what is waiting, after earlier batches. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.delivering = true;
    this.chain = this.chain
      .then(() => this.deliver())
      .finally(() => {
        this.delivering = false;
        // What arrived while the last batch was on its way.
        if (this.buffer.length > 0 || this.progressPending) this.schedule();
      });
    return this.chain;
  }

  private get progressPending(): boolean {
    return this.progressValue !== undefined && this.progressValue !== this.sentProgress;
  }

  /** The next batch: up to `maxBatch` lines and `maxBatchChars` characters, at least one line; and its bytes. */
  private takeBatch(): { lines: NumberedLine[]; bytes: number } {
    let count = 0;
    let chars = 0;
    let bytes = 0;
    while (count < this.buffer.length && count < this.maxBatch) {
      const next = this.buffer[count]!.text.length;
      if (count > 0 && chars + next > this.maxBatchChars) break;
      chars += next;
      bytes += this.bufferSizes[count]!;
      count++;
    }
    this.bufferedChars -= chars;
    this.bufferSizes.splice(0, count);
    return { lines: this.buffer.splice(0, count), bytes };
  }

  private async deliver(): Promise<void> {
    const progressChanged = this.progressPending;
    if (this.buffer.length === 0 && !progressChanged) return;
    const { lines, bytes } = this.takeBatch();
    const progress = this.progressValue;
    for (let attempt = 1; ; attempt++) {
      try {
        const reply = await this.send({ lines, ...(progressChanged ? { progress } : {}) });
        if (progressChanged) this.sentProgress = progress;
        this.pending -= bytes;
        this.drained();
        if (reply.stop) this.options.onStop?.(reply.stopReason);
        break;
      } catch (err) {
        if (attempt === 1 || attempt % 10 === 0) this.logger.warn({ err: String(err), lines: lines.length, attempt }, 'execution log batch not delivered; retrying');
        if (this.closed && attempt >= 5) {
          // The outcome carries what is left; it is sent with the same numbers.
          this.buffer.unshift(...lines);
          this.bufferSizes.unshift(...lines.map((l) => Buffer.byteLength(l.text)));
          this.bufferedChars += lines.reduce((n, l) => n + l.text.length, 0);
          return;
        }
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** Math.min(attempt, 6))));
      }
    }
    if (this.buffer.length > 0) await this.deliver();
  }

  /**
   * Ends the sink: waits for batches under way and hands back what is still waiting (sent
   * before the run's outcome and with it, in as many requests as `inRequests` makes).
   */
  async close(): Promise<LogBatch> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    // A source still waiting goes on: what it gives now travels with the outcome.
    this.drained();
    await this.chain;
    const lines = this.buffer.splice(0);
    this.bufferSizes = [];
    this.bufferedChars = 0;
    this.pending = 0;
    const progressChanged = this.progressValue !== undefined && this.progressValue !== this.sentProgress;
    return { lines, ...(progressChanged ? { progress: this.progressValue } : {}) };
  }
}
