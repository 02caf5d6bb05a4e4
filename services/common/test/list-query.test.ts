import { InvalidArgument } from '../src/errors';
import { endOnWholeInstant, filterToSql, pageOfLines, likePattern, parseFilter, parsePaging, parseSort, shareOf, sortToSql, unpaginatedLimit, type FieldMap } from '../src/list-query';

const fields: FieldMap = {
  name: { column: 't.name', type: 'string' },
  status: { column: 't.status', type: 'enum', values: ['PENDING', 'FINISHED', 'FAILED'] },
  progress: { column: 't.progress', type: 'number' },
  public: { column: 't.public', type: 'boolean' },
  user_id: { column: 't.user_id', type: 'uuid' },
  updated_at: { column: 't.updated_at', type: 'date' },
  params: { column: 't.params', type: 'string', sortable: false },
};

describe('filter', () => {
  it('parses an AND list with typed values into SQL placeholders', () => {
    const filter = parseFilter('name like %ndvi%,status=finished,progress>=50,public=true', fields);
    const { sql, params } = filterToSql(filter, fields);
    expect(sql).toBe("t.name::text ilike ? escape '!' and t.status = ? and t.progress >= ? and t.public = ?");
    expect(params).toEqual(['%ndvi%', 'FINISHED', 50, true]);
  });

  it('parses an OR group in parentheses', () => {
    const { sql, params } = filterToSql(parseFilter('(status=FAILED|status=FINISHED),name!=x', fields), fields);
    expect(sql).toBe('(t.status = ? or t.status = ?) and t.name <> ?');
    expect(params).toEqual(['FAILED', 'FINISHED', 'x']);
  });

  it('takes parentheses, commas and bars inside a quoted value as text', () => {
    const { sql, params } = filterToSql(parseFilter(`name='Land Productivity (SDG 15.3.1)',(name like "%a,b|c%"|status=FAILED),name!=O'Brien`, fields), fields);
    expect(sql).toBe("t.name = ? and (t.name::text ilike ? escape '!' or t.status = ?) and t.name <> ?");
    expect(params).toEqual(['Land Productivity (SDG 15.3.1)', '%a,b|c%', 'FAILED', "O'Brien"]);
    // A quote that never closes is a character; the parentheses around it still count.
    expect(() => parseFilter("name='open (", fields)).toThrow(/Unbalanced parentheses/);
  });

  it('keeps % as the only like wildcard: _, ! and \\ match themselves, a trailing \\ included', () => {
    const { sql, params } = filterToSql(parseFilter('name like abc\\,name like %a_b!c%,name like 100%', fields), fields);
    expect(sql).toBe("t.name::text ilike ? escape '!' and t.name::text ilike ? escape '!' and t.name::text ilike ? escape '!'");
    expect(params).toEqual(['abc\\', '%a!_b!!c%', '100%']);
    expect(likePattern('\\')).toBe('\\');
    expect(likePattern('%_%!')).toBe('%!_%!!');
  });

  it('parses dates in any ISO form', () => {
    const { params } = filterToSql(parseFilter('updated_at>2026-11-28T05:13:18.123456 00:00', fields), fields);
    expect(params[0]).toEqual(new Date(Date.UTC(2026, 10, 28, 5, 13, 18, 123)));
  });

  it('keeps SQL out of the text', () => {
    const { sql, params } = filterToSql(parseFilter("name=x' or 1=1 --", fields), fields);
    expect(sql).toBe('t.name = ?');
    expect(params).toEqual(["x' or 1=1 --"]);
  });

  it.each([
    ['password=x', /Unknown filter field 'password'/],
    ['status=RUNNINGX', /Invalid value for 'status'/],
    ['user_id=abc', /expected a UUID/],
    ['progress>=lots', /expected a number/],
    ['updated_at>yesterday', /ISO 8601/],
    ['progress like 5', /does not support like/],
    ['(status=FAILED', /Unbalanced/],
    ['name', /Invalid filter condition/],
    // Names every object has are no fields.
    ['constructor=1', /Unknown filter field 'constructor'/],
    ['__proto__=1', /Unknown filter field '__proto__'/],
    ['toString>2026-01-01', /Unknown filter field 'toString'/],
    ['(name=a|hasOwnProperty=b)', /Unknown filter field 'hasOwnProperty'/],
  ])('refuses %j with a 400 naming the problem', (input, message) => {
    expect(() => parseFilter(input, fields)).toThrow(InvalidArgument);
    expect(() => parseFilter(input, fields)).toThrow(message);
  });
});

describe('sort', () => {
  it('reads `field dir` and `-field`, ending with a tiebreaker', () => {
    const sort = parseSort('-updated_at,name asc', fields);
    expect(sortToSql(sort, fields, 't.created_at', 't.id')).toBe('t.updated_at desc, t.name asc, t.id');
    expect(sortToSql([], fields, 't.created_at desc', 't.id desc')).toBe('t.created_at desc, t.id desc');
  });

  it('refuses unknown and unsortable fields', () => {
    expect(() => parseSort('secret', fields)).toThrow(/Unknown sort field 'secret'/);
    expect(() => parseSort('params', fields)).toThrow(/cannot be sorted by 'params'/);
    expect(() => parseSort('name sideways', fields)).toThrow(InvalidArgument);
    for (const name of ['constructor', '-__proto__', 'valueOf desc', 'hasOwnProperty']) {
      expect(() => parseSort(name, fields)).toThrow(/Unknown sort field/);
    }
  });

  it('quotes a refused value cut short without splitting a surrogate pair', () => {
    const halves = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
    const emojiAtTheCut = `${'a'.repeat(99)}\u{1F600}`;
    for (const refuse of [() => parseSort(emojiAtTheCut, fields), () => parseFilter(emojiAtTheCut, fields), () => parseSort(`${emojiAtTheCut} up`, fields)]) {
      let message = '';
      try {
        refuse();
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/'a{99}'/);
      expect(message).not.toMatch(halves);
    }
  });
});

describe('paging', () => {
  it('pages by 20 by default once page or per_page is given, and caps per_page at 100', () => {
    expect(parsePaging(1, undefined)).toEqual({ page: 1, perPage: 20, offset: 0, paginated: true });
    expect(parsePaging(2, 0)).toEqual({ page: 2, perPage: 20, offset: 20, paginated: true });
    expect(parsePaging(undefined, 5)).toEqual({ page: 1, perPage: 5, offset: 0, paginated: true });
    expect(parsePaging(3, 500)).toEqual({ page: 3, perPage: 100, offset: 200, paginated: true });
  });

  it('answers the first 1,000 rows when asked without page and per_page', () => {
    expect(parsePaging(undefined, undefined)).toEqual({ page: 1, perPage: unpaginatedLimit, offset: 0, paginated: false });
    expect(parsePaging(0, 0)).toEqual({ page: 1, perPage: 1000, offset: 0, paginated: false });
    expect(parsePaging(0, -5)).toEqual({ page: 1, perPage: 1000, offset: 0, paginated: false });
  });
});

describe('shareOf', () => {
  it('shares a total between the rows of an answer, within each row\'s own bound, at least one each', () => {
    expect(shareOf(100_000, 100, 1000)).toBe(1000);
    expect(shareOf(100_000, 101, 1000)).toBe(990);
    expect(shareOf(10_000, 400, 100)).toBe(25);
    expect(shareOf(100_000, 1)).toBe(100_000);
    expect(shareOf(100_000, 0)).toBe(100_000);
    expect(shareOf(10, 1000)).toBe(1);
  });
});

describe('endOnWholeInstant', () => {
  const at = (ms: number, id: number) => ({ id, registerDate: new Date(ms) });
  const none = async () => [];

  it('keeps a page whole when no line follows it: it is the end of the log', async () => {
    const lines = [at(1, 1), at(2, 2), at(2, 3)];
    expect(await endOnWholeInstant(lines, false, none)).toEqual(lines);
  });

  it('reads one line more than a page holds, so a log of exactly a page is whole', () => {
    const lines = [at(1, 1), at(2, 2), at(2, 3)];
    expect(pageOfLines(lines, 3)).toEqual({ lines, more: false });
    expect(pageOfLines(lines, 2)).toEqual({ lines: lines.slice(0, 2), more: true });
    expect(pageOfLines(lines, 3, true)).toEqual({ lines, more: true });
  });

  it('stops a full page before its last instant', async () => {
    const lines = [at(1, 1), at(2, 2), at(3, 3), at(3, 4)];
    expect((await endOnWholeInstant(lines, true, none)).map((l) => l.id)).toEqual([1, 2]);
  });

  it('takes the rest of the instant when the whole page is one', async () => {
    const lines = [at(5, 1), at(5, 2)];
    const rest = jest.fn(async (last: { id: number }) => [at(5, last.id + 1), at(5, last.id + 2)]);
    expect((await endOnWholeInstant(lines, true, rest)).map((l) => l.id)).toEqual([1, 2, 3, 4]);
    expect(rest).toHaveBeenCalledWith(lines[1]);
  });
});
