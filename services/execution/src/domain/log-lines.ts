import { cutText, InvalidArgument } from '@gef/common';
import type { LogLevel } from '../entities/execution-log';

/** The longest log line kept (longer ones are cut with a mark). */
export const maxLineLength = 32 * 1024;
/** Lines per append. */
export const maxLinesPerAppend = 10_000;

/** A line to store. `seq` numbers it at its source within an attempt (null: not numbered). */
export interface NewLogLine {
  text: string;
  level: LogLevel;
  seq: number | null;
}

/** NUL, which PostgreSQL's text and jsonb refuse, and unpaired surrogates, which jsonb refuses. */
const unstorable = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Text as PostgreSQL can store it: what it refuses becomes U+FFFD (a script prints what it likes). */
export function storableText(text: string): string {
  return text.replace(unstorable, '\uFFFD');
}

/**
 * A JSON document (a script's results), checked, with every string in it (keys too)
 * storable; the document as given when nothing had to change. Throws on text that is not JSON.
 */
export function storableJson(json: string): string {
  let changed = false;
  const text = (value: string) => {
    const stored = storableText(value);
    if (stored !== value) changed = true;
    return stored;
  };
  const clean = (value: unknown): unknown => {
    if (typeof value === 'string') return text(value);
    if (Array.isArray(value)) return value.map(clean);
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [text(k), clean(v)]));
    return value;
  };
  const cleaned = clean(JSON.parse(json));
  return changed ? JSON.stringify(cleaned) : json;
}

export function clipText(text: string): string {
  return text.length > maxLineLength ? `${cutText(text, maxLineLength)}… [cut at ${maxLineLength} characters]` : text;
}

/** The REST level names (any case; WARN means WARNING), or undefined. */
export function parseLevel(name: string): LogLevel | undefined {
  const upper = name.trim().toUpperCase();
  if (upper === 'WARN') return 'WARNING';
  return (['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'] as const).find((l) => l === upper);
}

/** Checks a batch: size, texts, sequence numbers unique within it. */
export function checkLines(lines: NewLogLine[]): NewLogLine[] {
  if (lines.length > maxLinesPerAppend) throw new InvalidArgument(`At most ${maxLinesPerAppend} lines per request`, 'invalid_argument');
  const seqs = new Set<number>();
  return lines.map((line) => {
    if (line.seq !== null) {
      if (!Number.isInteger(line.seq) || line.seq < 0 || line.seq > 2_147_483_647) throw new InvalidArgument('Invalid log sequence number', 'invalid_argument');
      if (seqs.has(line.seq)) throw new InvalidArgument(`Log sequence number ${line.seq} appears twice`, 'invalid_argument');
      seqs.add(line.seq);
    }
    return { ...line, text: clipText(storableText(line.text)) };
  });
}

/**
 * Sequence numbers of the lines the platform itself writes (negative, so they never meet a
 * runner's): each message at most once per attempt, however often its activity is retried.
 */
export const serviceLineSeq = {
  queued: -1,
  cancelRequested: -2,
  cancelledBeforeStart: -3,
  cancelled: -4,
  failedByPlatform: -5,
  endedFromOutside: -6,
  attemptStarted: -7,
  endedBeforeStopped: -8,
  resultsTooDeep: -9,
  resultsTooLarge: -10,
  noRunner: -11,
} as const;
