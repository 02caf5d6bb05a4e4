import { parseApiDate } from './dates';
import { InvalidArgument } from './errors';
import { cutText } from './storable-text';

/**
 * List parameters shared by every list route: `filter`, `sort`, `page`, `per_page`
 * (CONTRACT.md §9). Parsed against a whitelist of fields into SQL with `?` placeholders;
 * values never reach SQL text.
 */

export type FieldType = 'string' | 'date' | 'number' | 'boolean' | 'uuid' | 'enum';

export interface FieldSpec {
  /** The SQL expression (a column, e.g. `e.updated_at`). */
  column: string;
  type: FieldType;
  /** Allowed values of an enum field (compared case-insensitively, stored upper case). */
  values?: readonly string[];
  /** Whether the field may be used in `sort` (default true). */
  sortable?: boolean;
}

export type FieldMap = Record<string, FieldSpec>;

export const filterOperators = ['=', '!=', '>=', '<=', '>', '<', 'like'] as const;
export type FilterOperator = (typeof filterOperators)[number];

export interface Condition {
  field: string;
  op: FilterOperator;
  value: string | number | boolean | Date;
}

/** Conditions ANDed together; an inner array is an OR group. */
export type Filter = (Condition | Condition[])[];

export interface SortKey {
  field: string;
  direction: 'asc' | 'desc';
}

/** A UUID as text, in any case. */
export const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const maxFilterLength = 2000;
const maxConditions = 20;

/** Where a quoted value that opens at `open` closes (its quote followed by the end, a separator, `)` or a space); -1 if it does not. */
function quoteEnd(input: string, open: number): number {
  const quote = input[open]!;
  for (let i = input.indexOf(quote, open + 1); i !== -1; i = input.indexOf(quote, i + 1)) {
    if (i + 1 === input.length || /[,|)\s]/.test(input[i + 1]!)) return i;
  }
  return -1;
}

/**
 * Splits at `separator` outside parentheses and outside a quoted value (`name='Land (SDG)'`:
 * a quote right after an operator, a space or `(` opens one, to the matching quote before a
 * separator, `)`, a space or the end). A quote inside a word (`O'Brien`) is a character.
 */
function splitTopLevel(input: string, separator: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (let i = 0; i < input.length; i++) {
    const ch = input[i]!;
    if ((ch === "'" || ch === '"') && (i === 0 || /[=<>(\s]/.test(input[i - 1]!))) {
      const end = quoteEnd(input, i);
      if (end !== -1) {
        current += input.slice(i, end + 1);
        i = end;
        continue;
      }
    }
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (depth < 0) throw new InvalidArgument('Unbalanced parentheses in filter', 'invalid_filter');
    if (ch === separator && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  if (depth !== 0) throw new InvalidArgument('Unbalanced parentheses in filter', 'invalid_filter');
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

const conditionPattern = /^([A-Za-z_][A-Za-z0-9_]*)\s*(!=|>=|<=|=|>|<|\s+like\s+)\s*(.*)$/i;

function parseValue(field: string, spec: FieldSpec, op: FilterOperator, raw: string): Condition['value'] {
  const text = raw.trim().replace(/^(['"])(.*)\1$/s, '$2');
  if (op === 'like') {
    if (spec.type !== 'string' && spec.type !== 'enum') {
      throw new InvalidArgument(`Filter field '${field}' does not support like`, 'invalid_filter');
    }
    return text;
  }
  switch (spec.type) {
    case 'string':
      return text;
    case 'enum': {
      const upper = text.toUpperCase();
      if (spec.values && !spec.values.includes(upper)) {
        throw new InvalidArgument(`Invalid value for '${field}': expected one of ${spec.values.join(', ')}`, 'invalid_filter');
      }
      return upper;
    }
    case 'uuid':
      if (!uuidPattern.test(text)) throw new InvalidArgument(`Invalid value for '${field}': expected a UUID`, 'invalid_filter');
      return text.toLowerCase();
    case 'number': {
      const n = Number(text);
      if (text === '' || !Number.isFinite(n)) throw new InvalidArgument(`Invalid value for '${field}': expected a number`, 'invalid_filter');
      return n;
    }
    case 'boolean':
      if (/^(true|1)$/i.test(text)) return true;
      if (/^(false|0)$/i.test(text)) return false;
      throw new InvalidArgument(`Invalid value for '${field}': expected true or false`, 'invalid_filter');
    case 'date': {
      const d = parseApiDate(text);
      if (!d) throw new InvalidArgument(`Invalid value for '${field}': expected an ISO 8601 date`, 'invalid_filter');
      return d;
    }
  }
}

/** A documented field's spec: own keys only (`constructor`, `__proto__`… are no fields). */
function fieldSpec(fields: FieldMap, field: string): FieldSpec | undefined {
  return Object.hasOwn(fields, field) ? fields[field] : undefined;
}

function parseCondition(text: string, fields: FieldMap): Condition {
  const m = conditionPattern.exec(text);
  if (!m) throw new InvalidArgument(`Invalid filter condition: '${cutText(text, 100)}'`, 'invalid_filter');
  const field = m[1]!;
  const op = m[2]!.trim().toLowerCase() as FilterOperator;
  const spec = fieldSpec(fields, field);
  if (!spec) throw new InvalidArgument(`Unknown filter field '${cutText(field, 100)}'`, 'invalid_filter');
  return { field, op, value: parseValue(field, spec, op, m[3]!) };
}

/** Parses `filter`: comma-separated AND list, OR groups in parentheses separated by `|`. */
export function parseFilter(input: string | undefined, fields: FieldMap): Filter {
  if (input === undefined || input.trim() === '') return [];
  if (input.length > maxFilterLength) throw new InvalidArgument('Filter too long', 'invalid_filter');
  const filter: Filter = [];
  for (const part of splitTopLevel(input, ',')) {
    if (part.startsWith('(') && part.endsWith(')')) {
      const inner = part.slice(1, -1);
      const alternatives = splitTopLevel(inner, '|').flatMap((p) => splitTopLevel(p, ','));
      if (alternatives.length === 0) throw new InvalidArgument('Empty OR group in filter', 'invalid_filter');
      filter.push(alternatives.map((a) => parseCondition(a, fields)));
    } else {
      filter.push(parseCondition(part, fields));
    }
  }
  if (filter.flat().length > maxConditions) throw new InvalidArgument('Too many filter conditions', 'invalid_filter');
  return filter;
}

/** Parses `sort`: `field [asc|desc]` comma list, `-field` descending. */
export function parseSort(input: string | undefined, fields: FieldMap): SortKey[] {
  if (input === undefined || input.trim() === '') return [];
  if (input.length > 500) throw new InvalidArgument('Sort too long', 'invalid_sort');
  return input
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
    .map((part) => {
      let direction: 'asc' | 'desc' = 'asc';
      let name = part;
      if (name.startsWith('-')) {
        direction = 'desc';
        name = name.slice(1);
      } else if (name.startsWith('+')) {
        name = name.slice(1);
      }
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:\s+(asc|desc))?$/i.exec(name.trim());
      if (!m) throw new InvalidArgument(`Invalid sort: '${cutText(part, 100)}'`, 'invalid_sort');
      const field = m[1]!;
      if (m[2]) direction = m[2].toLowerCase() as 'asc' | 'desc';
      const spec = fieldSpec(fields, field);
      if (!spec) throw new InvalidArgument(`Unknown sort field '${cutText(field, 100)}'`, 'invalid_sort');
      if (spec.sortable === false) throw new InvalidArgument(`Lists cannot be sorted by '${field}' (it may be filtered on)`, 'invalid_sort');
      return { field, direction };
    });
}

/**
 * The escape character of `like` patterns. Not the backslash (PostgreSQL's default): how
 * the literal `'\'` reads depends on standard_conforming_strings; `!` needs no quoting.
 */
const likeEscape = '!';

/**
 * A `like` value as an ILIKE pattern: `%` is the one wildcard (CONTRACT §9); `_`, the
 * escape character and everything else match themselves, so a value ending in `\` (which
 * PostgreSQL refuses as a pattern with its default escape) is plain text.
 */
export function likePattern(value: string): string {
  return value.replace(/[!_]/g, (ch) => likeEscape + ch);
}

function conditionSql(c: Condition, fields: FieldMap, params: unknown[]): string {
  const spec = fields[c.field]!;
  if (c.op === 'like') {
    params.push(likePattern(String(c.value)));
    return `${spec.column}::text ilike ? escape '${likeEscape}'`;
  }
  params.push(c.value);
  return `${spec.column} ${c.op === '!=' ? '<>' : c.op} ?`;
}

/** The filter as a SQL boolean expression with `?` placeholders (`true` when empty). */
export function filterToSql(filter: Filter, fields: FieldMap): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const clauses = filter.map((item) =>
    Array.isArray(item) ? `(${item.map((c) => conditionSql(c, fields, params)).join(' or ')})` : conditionSql(item, fields, params),
  );
  return { sql: clauses.length > 0 ? clauses.join(' and ') : 'true', params };
}

/** The sort as SQL, always ending with a unique tiebreaker so pages are stable. */
export function sortToSql(sort: SortKey[], fields: FieldMap, fallback: string, tiebreaker: string): string {
  if (sort.length === 0) return `${fallback}, ${tiebreaker}`;
  return [...sort.map((s) => `${fields[s.field]!.column} ${s.direction}`), tiebreaker].join(', ');
}

export interface Paging {
  page: number;
  perPage: number;
  offset: number;
  /** Asked with `page` or `per_page` (false: the first `unpaginatedLimit` rows). */
  paginated: boolean;
}

/**
 * The rows a list answers when asked without `page` and `per_page`: the clients that ask so
 * (the QGIS plugin's job list, its script list) expect every match, as the servers before
 * this one gave them, and no list answers more than this without pagination.
 */
export const unpaginatedLimit = 1000;

/**
 * What each of `items` rows of one answer may embed when the answer embeds at most
 * `perAnswer` in all and each row at most `perItem`: at least one each.
 */
export function shareOf(perAnswer: number, items: number, perItem = Infinity): number {
  return Math.max(1, Math.min(perItem, Math.floor(perAnswer / Math.max(1, items))));
}

/**
 * `page` from 1, `per_page` default 20 and at most 100. Neither given (absent or 0): the
 * first `unpaginatedLimit` rows, as page 1.
 */
export function parsePaging(page: number | undefined, perPage: number | undefined): Paging {
  const paginated = Boolean((page && page > 0) || (perPage && perPage > 0));
  if (!paginated) return { page: 1, perPage: unpaginatedLimit, offset: 0, paginated };
  const p = page && page > 0 ? Math.floor(page) : 1;
  const pp = perPage && perPage > 0 ? Math.min(100, Math.floor(perPage)) : 20;
  if (p > 1_000_000) throw new InvalidArgument('page is too large', 'invalid_argument');
  return { page: p, perPage: pp, offset: (p - 1) * pp, paginated };
}

/**
 * A page of log lines, read with one line more than it holds (`limit + 1`), so that a log of
 * exactly `limit` lines comes whole: the lines it holds and whether more follow (`more`: the
 * extra line was there, or the read stopped on bytes, `stoppedOnBytes`).
 */
export function pageOfLines<L>(read: L[], limit: number, stoppedOnBytes = false): { lines: L[]; more: boolean } {
  return read.length > limit ? { lines: read.slice(0, limit), more: true } : { lines: read, more: stoppedOnBytes };
}

/**
 * A page of log lines that more lines follow ends where its last instant ends. Lines written
 * in one batch share one register date, and a client continuing with `start=<the last
 * line's date>` (strictly after) would skip the batch's lines beyond the page: the page stops
 * before that instant instead, or, when the whole page is one instant, takes the rest of it.
 * A page that is the end of the log as it is now (`more` false) stays whole.
 */
export async function endOnWholeInstant<L extends { registerDate: Date }>(lines: L[], more: boolean, restOfInstant: (last: L) => Promise<L[]>): Promise<L[]> {
  if (!more || lines.length === 0) return lines;
  const last = lines[lines.length - 1]!;
  const instant = last.registerDate.getTime();
  let cut = lines.length;
  while (cut > 0 && lines[cut - 1]!.registerDate.getTime() === instant) cut--;
  return cut > 0 ? lines.slice(0, cut) : [...lines, ...(await restOfInstant(last))];
}
