import type { Request } from 'express';
import { InvalidArgument } from '@gef/common';
import { unstorableText } from '@gef/common';

/**
 * The comma-list parameters: given more than once (`include=script&include=user`, as Python's
 * requests writes a list), their values are one list.
 */
const commaLists = new Set(['include', 'exclude', 'status', 'sort', 'filter']);

/**
 * The query string of a request, checked against the names a route documents: an unknown
 * name, or another one given more than once, is a 400 naming it.
 */
export function queryOf(req: Request, allowed: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, raw] of Object.entries(req.query)) {
    if (!allowed.includes(key)) throw new InvalidArgument(`Unknown query parameter '${key.slice(0, 100)}'`, 'invalid_argument');
    const value = Array.isArray(raw) && commaLists.has(key) && raw.every((v) => typeof v === 'string') ? raw.join(',') : raw;
    if (typeof value !== 'string') throw new InvalidArgument(`Query parameter '${key}' must be given once, as text`, 'invalid_argument');
    storableQueryText(key, value);
    out[key] = value;
  }
  return out;
}

/** A positive whole number from the query (`page`, `per_page`), or undefined. */
export function positiveInt(query: Record<string, string>, name: string): number | undefined {
  const raw = query[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d{1,9}$/.test(raw) || Number(raw) < 1) throw new InvalidArgument(`${name} must be a positive integer`, 'invalid_argument');
  return Number(raw);
}

/** A comma list from the query, each item one of `allowed`. */
export function listOf(query: Record<string, string>, name: string, allowed: readonly string[]): string[] {
  const raw = query[name];
  if (raw === undefined || raw.trim() === '') return [];
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) {
    if (!allowed.includes(item)) throw new InvalidArgument(`Unknown ${name} value '${item.slice(0, 100)}'; expected ${allowed.join(', ')}`, 'invalid_argument');
  }
  return items;
}


/**
 * A decoded query parameter holding text no database column can hold (`unstorableText`:
 * `%00`, an unpaired surrogate) is a 400, not a failure of whatever would look it up or store it.
 */
export function storableQueryText(key: string, value: string): void {
  if (unstorableText.test(key) || unstorableText.test(value)) {
    throw new InvalidArgument(`Query parameter '${key.replace(unstorableText, '?').slice(0, 100)}' holds a NUL character (%00) or an unpaired surrogate, which text cannot hold`, 'invalid_argument');
  }
}
