/**
 * Dates as the REST contract writes them: UTC, ISO 8601 without offset, six fractional
 * digits (`2026-11-28T05:13:18.000000`).
 */
export function formatApiDate(date: Date | null | undefined): string | null {
  if (!date) return null;
  const ms = date.getTime();
  return Number.isNaN(ms) ? null : formatApiMillis(ms);
}

/** The last second formatted (`2026-11-28T05:13:18`): lines of a page mostly share their seconds. */
let cachedSecond = Number.NaN;
let cachedPrefix = '';
/** `.000000` to `.999000`, by millisecond. */
const fractions = Array.from({ length: 1000 }, (_, i) => `.${String(i).padStart(3, '0')}000`);

/** As formatApiDate, from milliseconds since the epoch (an instant Date can hold). */
export function formatApiMillis(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, 19);
    cachedSecond = second;
  }
  return cachedPrefix + fractions[ms - second * 1000]!;
}

/** Extended format (`2026-11-28T05:13:18.5+05:00`), down to the hour (`2026-11-28T05`) or the day. */
const isoExtended =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?|\s\d{2}(?::?\d{2})?)?)?$/i;
/** Basic format (`20261128T051318Z`, `20261128T0513+0500`, `20261128`). */
const isoBasic = /^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(?:(\d{2})(?:(\d{2})(?:[.,](\d{1,9}))?)?)?(Z|[+-]\d{2}(?:\d{2})?)?)?$/i;

/**
 * Parses any ISO 8601 date or date-time, extended or basic format, with or without offset
 * (no offset means UTC; `±hh`, `±hh:mm`, `±hhmm`), down to the day or the hour, and the
 * broken form where a `+` in the offset arrived as a space. Returns null for anything else.
 */
export function parseApiDate(input: string): Date | null {
  const text = input.trim();
  const m = isoExtended.exec(text) ?? isoBasic.exec(text);
  if (!m) return null;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone] = m;
  const ms = Number((frac + '000').slice(0, 3));
  let offsetMinutes = 0;
  if (zone && zone.toUpperCase() !== 'Z') {
    const z = zone.trim();
    const sign = z.startsWith('-') ? -1 : 1;
    const digits = z.replace(/[^0-9]/g, '');
    const offsetHours = Number(digits.slice(0, 2));
    const offsetMins = Number(digits.slice(2, 4) || '0');
    if (offsetHours > 23 || offsetMins > 59) return null;
    offsetMinutes = sign * (offsetHours * 60 + offsetMins);
  }
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return null;
  // setUTCFullYear, not Date.UTC, which reads years 0–99 as 1900–1999.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  // Reject days that do not exist (2026-02-30).
  if (date.getUTCDate() !== day) return null;
  date.setUTCHours(hour, minute, second, ms);
  const utc = date.getTime() - offsetMinutes * 60_000;
  return utc >= firstApiMillis && utc <= lastApiMillis ? new Date(utc) : null;
}

/**
 * The instants a date may name once its offset is applied: years 1 to 9999, as ISO 8601
 * writes them with four digits and as the database and every client read them.
 */
const firstApiMillis = new Date(0).setUTCFullYear(1, 0, 1);
const lastApiMillis = new Date(0).setUTCFullYear(10_000, 0, 1) - 1;
