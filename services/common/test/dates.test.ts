import { formatApiDate, formatApiMillis, parseApiDate } from '../src/dates';

describe('API dates', () => {
  it('formats UTC with six fractional digits and no offset', () => {
    expect(formatApiDate(new Date(Date.UTC(2026, 10, 28, 5, 13, 18, 0)))).toBe('2026-11-28T05:13:18.000000');
    expect(formatApiDate(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678)))).toBe('2026-01-02T03:04:05.678000');
    expect(formatApiDate(null)).toBeNull();
    expect(formatApiDate(new Date(Number.NaN))).toBeNull();
  });

  it('formats any instant as the ISO form with its milliseconds, whatever the previous one was', () => {
    const instants = [0, 999, 1000, -1, -999, -1000, -86_400_001, Date.UTC(1969, 11, 31, 23, 59, 59, 1), Date.UTC(2026, 10, 28, 5, 13, 18, 999)];
    // Neighbours in one second and across seconds, in any order (the last second is kept).
    for (let i = 0; i < 2000; i++) instants.push(Date.UTC(2026, 10, 28) + Math.floor(Math.random() * 5000) * (i % 3 === 0 ? 1 : 997));
    for (const ms of instants) {
      const iso = new Date(ms).toISOString();
      expect(formatApiMillis(ms)).toBe(`${iso.slice(0, 23)}000`);
      expect(formatApiDate(new Date(ms))).toBe(`${iso.slice(0, 23)}000`);
    }
  });

  it.each([
    ['2026-11-28T05:13:18.123456', Date.UTC(2026, 10, 28, 5, 13, 18, 123)],
    ['2026-11-28T05:13:18Z', Date.UTC(2026, 10, 28, 5, 13, 18)],
    ['2026-11-28T07:13:18+02:00', Date.UTC(2026, 10, 28, 5, 13, 18)],
    ['2026-11-28T05:13:18.123456 00:00', Date.UTC(2026, 10, 28, 5, 13, 18, 123)],
    ['2026-11-28T06:13:18 01:00', Date.UTC(2026, 10, 28, 5, 13, 18)],
    ['2026-11-28T00:13:18-0500', Date.UTC(2026, 10, 28, 5, 13, 18)],
    ['2026-11-28', Date.UTC(2026, 10, 28)],
    ['2026-11-28 05:13', Date.UTC(2026, 10, 28, 5, 13)],
    ['2026-11-28T10:13:18+05', Date.UTC(2026, 10, 28, 5, 13, 18)],
    ['2026-11-28T10:13:18 05', Date.UTC(2026, 10, 28, 5, 13, 18)],
    ['2026-11-28T05', Date.UTC(2026, 10, 28, 5)],
    ['2026-11-28T05Z', Date.UTC(2026, 10, 28, 5)],
    ['20261128T051318Z', Date.UTC(2026, 10, 28, 5, 13, 18)],
    ['20261128T101318,5+0500', Date.UTC(2026, 10, 28, 5, 13, 18, 500)],
    ['20261128T0513-01', Date.UTC(2026, 10, 28, 6, 13)],
    ['20261128', Date.UTC(2026, 10, 28)],
    ['0001-01-01T00:00:00Z', new Date(0).setUTCFullYear(1, 0, 1)],
    ['0099-12-31', new Date(0).setUTCFullYear(99, 11, 31)],
    ['9999-12-31T23:59:59.999+00:00', new Date(0).setUTCFullYear(9999, 11, 31) + 86_399_999],
    ['9999-12-31T23:00:00+05:00', new Date(0).setUTCFullYear(9999, 11, 31) + 18 * 3_600_000],
    // Week dates: week 1 holds 4 January; 2026 begins on a Thursday, so it has a week 53.
    ['2026-W48-6', Date.UTC(2026, 10, 28)],
    ['2026-W48-6T07:13:18+02:00', Date.UTC(2026, 10, 28, 5, 13, 18)],
    ['2026W486T051318Z', Date.UTC(2026, 10, 28, 5, 13, 18)],
    ['2026-W01-1', Date.UTC(2025, 11, 29)],
    ['2026-W53-7', Date.UTC(2027, 0, 3)],
    ['2026-W48', Date.UTC(2026, 10, 23)],
    ['2026W48', Date.UTC(2026, 10, 23)],
    ['2027-W01', Date.UTC(2027, 0, 4)],
    // Ordinal dates.
    ['2026-332', Date.UTC(2026, 10, 28)],
    ['2026332T0513', Date.UTC(2026, 10, 28, 5, 13)],
    ['2026112', Date.UTC(2026, 3, 22)],
    ['2024-366', Date.UTC(2024, 11, 31)],
    // Reduced dates: their first instant.
    ['2026-11', Date.UTC(2026, 10, 1)],
    ['2026', Date.UTC(2026, 0, 1)],
    // A fraction of the last unit given; 24:00 is the end of the day.
    ['2026-11-28T05.5', Date.UTC(2026, 10, 28, 5, 30)],
    ['2026-11-28T05:13,25Z', Date.UTC(2026, 10, 28, 5, 13, 15)],
    ['20261128T0513.5', Date.UTC(2026, 10, 28, 5, 13, 30)],
    ['2026-11-28T05:13:18.1239', Date.UTC(2026, 10, 28, 5, 13, 18, 123)],
    ['2026-11-28T24:00', Date.UTC(2026, 10, 29)],
    ['2026-11-28T24:00:00.000+01:00', Date.UTC(2026, 10, 28, 23)],
  ])('parses %s', (input, expected) => {
    expect(parseApiDate(input)?.getTime()).toBe(expected);
  });

  it.each(['', 'yesterday', '2026-13-01', '2026-02-30', '2026-11-28T25:00:00', '28/11/2026', "2026-11-28'; drop table x", '2026-11-28T05:13:1805', '2026-11-28T0513', '20261128T05:13', '2026-11-28T05:13+25:00', '2026-11-28T05:13+05:60', '2025-W53-1', '2026-W54-1', '2026-W00-1', '2026-W48-8', '2026-W48-0', '2026-W48T05', '2026-11T05', '2026T05', '2026-367', '2025-366', '2026-000', '2026-11-28T24:00:01', '2026-11-28T24:00.5', '2026-11-28T24.5', '2026-11-28T05:60', '2026-11-28T05:13:60', '202611', '2026-1128', '2026-W486', '0000-12-31', '0001-01-01T00:30+01:00', '9999-12-31T23:00:00-05:00', '99991231T2300-0500'])(
    'refuses %j',
    (input) => {
      expect(parseApiDate(input)).toBeNull();
    },
  );
});
