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

/**
 * Extended format: a calendar (`2026-11-28`), week (`2026-W48-6`) or ordinal (`2026-332`)
 * date, or a reduced one (`2026-11`, `2026-W48`, `2026`), then optionally a time down to the
 * hour (`T05`, `T05:13`, `T05:13:18`), a decimal fraction of its last unit (`.5` or `,5`)
 * and an offset. The groups: year, month, day, week, weekday, ordinal day, hour, minute,
 * second, fraction, offset.
 */
const isoExtended =
  /^(\d{4})(?:-(?:(\d{2})(?:-(\d{2}))?|W(\d{2})(?:-(\d))?|(\d{3})))?(?:[T ](\d{2})(?::(\d{2})(?::(\d{2}))?)?(?:[.,](\d{1,9}))?\s*(Z|[+-]\d{2}(?::?\d{2})?|\s\d{2}(?::?\d{2})?)?)?$/i;
/** Basic format (`20261128T051318Z`, `2026W486T0513+0500`, `2026332`), the same groups. */
const isoBasic =
  /^(\d{4})(?:(\d{2})(\d{2})|W(\d{2})(\d)?|(\d{3}))(?:T(\d{2})(?:(\d{2})(?:(\d{2}))?)?(?:[.,](\d{1,9}))?(Z|[+-]\d{2}(?:\d{2})?)?)?$/i;

const dayMs = 86_400_000;

/** Midnight UTC of a day of the year (1 is 1 January), counting on past the year's end. */
function dayOfYear(year: number, day: number): number {
  // setUTCFullYear, not Date.UTC, which reads years 0–99 as 1900–1999.
  return new Date(0).setUTCFullYear(year, 0, day);
}

function calendarDay(year: number, month: number, day: number): number | null {
  if (month < 1 || month > 12 || day < 1 || day > 31) return null;
  const date = new Date(dayOfYear(year, 1));
  date.setUTCMonth(month - 1, day);
  // Days that do not exist (2026-02-30) roll over into the next month.
  return date.getUTCDate() === day ? date.getTime() : null;
}

function ordinalDay(year: number, day: number): number | null {
  if (day < 1) return null;
  const ms = dayOfYear(year, day);
  return new Date(ms).getUTCFullYear() === year ? ms : null;
}

/** The Monday of ISO week 1: the week that holds 4 January. */
function firstIsoMonday(year: number): number {
  const jan4 = dayOfYear(year, 4);
  return jan4 - ((new Date(jan4).getUTCDay() + 6) % 7) * dayMs;
}

function weekDay(year: number, week: number, weekday: number): number | null {
  if (week < 1 || weekday < 1 || weekday > 7) return null;
  const ms = firstIsoMonday(year) + ((week - 1) * 7 + weekday - 1) * dayMs;
  // Week 53 only in years that have one.
  return ms < firstIsoMonday(year + 1) ? ms : null;
}

/** Milliseconds in the hour, minute and second: what a fraction of each stands for. */
const unitMs = [3_600_000, 60_000, 1000] as const;

/**
 * Parses any ISO 8601 date or date-time, extended or basic format: calendar, week and
 * ordinal dates, reduced ones (a month, a week, a year: their first instant), times down to
 * the hour with a decimal fraction of the last unit, `24:00` (the end of the day), with or
 * without offset (no offset means UTC; `±hh`, `±hh:mm`, `±hhmm`), and the broken form where
 * a `+` in the offset arrived as a space. Returns null for anything else.
 */
export function parseApiDate(input: string): Date | null {
  const text = input.trim();
  const m = isoExtended.exec(text) ?? isoBasic.exec(text);
  if (!m) return null;
  const [, y, month, day, week, weekday, ordinal, h, mi, s, frac, zone] = m;
  const year = Number(y);
  const timed = h !== undefined;
  // A time needs a whole day before it.
  if (timed && (week !== undefined ? weekday === undefined : ordinal === undefined && day === undefined)) return null;
  const midnight =
    week !== undefined
      ? weekDay(year, Number(week), Number(weekday ?? 1))
      : ordinal !== undefined
        ? ordinalDay(year, Number(ordinal))
        : calendarDay(year, Number(month ?? 1), Number(day ?? 1));
  if (midnight === null) return null;

  const hour = Number(h ?? 0);
  const minute = Number(mi ?? 0);
  const second = Number(s ?? 0);
  // The fraction is of the last unit given, truncated to the millisecond.
  const last = s !== undefined ? 2 : mi !== undefined ? 1 : 0;
  const fraction = frac ? Math.floor((Number(frac) * unitMs[last]) / 10 ** frac.length) : 0;
  if (minute > 59 || second > 59) return null;
  if (hour > 24 || (hour === 24 && minute + second + fraction > 0)) return null;

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
  const utc = midnight + hour * unitMs[0] + minute * unitMs[1] + second * unitMs[2] + fraction - offsetMinutes * 60_000;
  return utc >= firstApiMillis && utc <= lastApiMillis ? new Date(utc) : null;
}

/**
 * The instants a date may name once its offset is applied: years 1 to 9999, as ISO 8601
 * writes them with four digits and as the database and every client read them.
 */
const firstApiMillis = new Date(0).setUTCFullYear(1, 0, 1);
const lastApiMillis = new Date(0).setUTCFullYear(10_000, 0, 1) - 1;
