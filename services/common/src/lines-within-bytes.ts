/**
 * Log lines read within a byte budget: an answer (a page of a log, or the lines embedded in
 * a record or a list) holds at most so many bytes of line text, counted as JSON strings take
 * it. Lines may be long, and a page of thousands of them was hundreds of megabytes in the
 * service, the gateway and the client. Rows carry their line's `text` and its UTF-8 size as
 * `bytes` (from `withinBytes`).
 */

/** Characters JSON writes escaped: control characters (`\n` or `\u0001`), `"` and `\`. */
const escapedInJson = /[\u0000-\u001f"\\]/;

/**
 * Bytes `text` takes inside a JSON string, given its UTF-8 bytes: the same, plus what escapes
 * add (a control character may take 6 bytes, `\u0001`). Lines without such characters, most
 * of them, cost one regular-expression test.
 */
export function jsonTextBytes(text: string, utf8Bytes: number): number {
  if (!escapedInJson.test(text)) return utf8Bytes;
  let extra = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) extra += 1;
    // \b \t \n \f \r take 2 bytes, the other control characters 6.
    else if (c < 0x20) extra += c >= 0x08 && c <= 0x0d && c !== 0x0b ? 1 : 5;
  }
  return utf8Bytes + extra;
}

/**
 * A statement of lines (`select` with a `text` column and `?` params, in id order, at most
 * `limit`) cut to the lines that begin within `maxBytes` of UTF-8 text, the statement's last
 * param: PostgreSQL counts the bytes (`octet_length` reads a stored value's size without
 * fetching it), so lines beyond the budget never leave the database. Each row carries its
 * `bytes`; the first line always comes.
 */
export const withinBytes = (linesSql: string) => `select w.* from (
    select l.*, octet_length(l.text) as bytes, sum(octet_length(l.text)) over (order by l.id rows unbounded preceding) as upto
    from (${linesSql}) l
  ) w where w.upto - w.bytes < ?`;

/** A row of `withinBytes`. */
export type RowWithBytes = Record<string, unknown>;

const bytesOf = (row: RowWithBytes) => jsonTextBytes(row['text'] as string, Number(row['bytes']));

/**
 * Takes rows in order while their text fits in `maxBytes` as JSON (at least one): the SQL
 * cut counted UTF-8 bytes, this counts escapes too. `full` when the budget was reached.
 */
export function takeWithin<L>(rows: RowWithBytes[], maxBytes: number, toLine: (row: RowWithBytes) => L): { lines: L[]; full: boolean; bytes: number } {
  const lines: L[] = [];
  let used = 0;
  for (const row of rows) {
    const bytes = bytesOf(row);
    if (lines.length > 0 && used + bytes > maxBytes) return { lines, full: true, bytes: used };
    used += bytes;
    lines.push(toLine(row));
  }
  // The database left lines out only after a page's worth of bytes.
  return { lines, full: used >= maxBytes, bytes: used };
}

/**
 * The lines of several owners (executions, scripts) in one answer, grouped by owner in the
 * order asked: up to `bytesEach` each and `maxBytes` in all. An owner whose first line is
 * larger than its share still gets that line while the answer has room; after that, its
 * lines are left out. An answer that runs out of bytes runs out on its last owners.
 */
export function shareWithin<L>(
  ids: string[],
  rows: RowWithBytes[],
  ownerColumn: string,
  budget: { bytesEach: number; maxBytes: number },
  toLine: (row: RowWithBytes) => L,
): Map<string, L[]> {
  const rowsOf = new Map<string, RowWithBytes[]>();
  for (const row of rows) {
    const id = row[ownerColumn] as string;
    const list = rowsOf.get(id);
    if (list) list.push(row);
    else rowsOf.set(id, [row]);
  }
  const out = new Map<string, L[]>();
  let left = budget.maxBytes;
  for (const id of ids) {
    const own = rowsOf.get(id);
    if (!own) continue;
    if (bytesOf(own[0]!) > left) {
      out.set(id, []);
      continue;
    }
    // At least the first line, which fits in what is left.
    const { lines, bytes } = takeWithin(own, Math.min(left, budget.bytesEach), toLine);
    left -= bytes;
    out.set(id, lines);
  }
  return out;
}

/** Where a page of one owner's log lines starts (both strictly after), or the one instant it is. */
export interface LinesFrom {
  /** A date, or ISO 8601 text. */
  after?: Date | string;
  afterId?: number;
  /** Only lines registered at this instant. */
  at?: Date;
  limit: number;
}

/**
 * The statement of a page of one owner's log lines, oldest first (`table` has `id`,
 * `register_date` and the owner's column), with its params: for `withinBytes` to cut, or to
 * run as it is.
 */
export function linesStatement(table: { name: string; owner: string; columns: string }, ownerId: string, from: LinesFrom): { sql: string; params: unknown[] } {
  const where = [`${table.owner} = ?`];
  const params: unknown[] = [ownerId];
  if (from.after) {
    where.push('register_date > ?::timestamptz');
    params.push(from.after);
  }
  if (from.afterId !== undefined) {
    where.push('id > ?');
    params.push(from.afterId);
  }
  if (from.at) {
    where.push('register_date = ?');
    params.push(from.at);
  }
  return { sql: `select ${table.columns} from ${table.name} where ${where.join(' and ')} order by id asc limit ?`, params: [...params, from.limit] };
}
