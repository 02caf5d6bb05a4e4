import { InvalidArgument } from '@gef/common';
import { paramsCheckMs, validateParams } from '../src/domain/params-schema';

function refusal(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgument);
    return (err as Error).message;
  }
  throw new Error('expected InvalidArgument');
}

// A script's params_schema is its author's: its patterns must not let one run hold the
// execution service's only thread (ReDoS), nor anything else in it for long.
describe('params_schema patterns and costly checks', () => {
  const redos = { type: 'object', properties: { a: { type: 'string', pattern: '^(a+)+$' } } };

  it('matches a catastrophic pattern in linear time: 40 characters and a million answer at once', () => {
    // JavaScript's RegExp took 5.7 s for 31 characters, doubling with each one more.
    expect(refusal(() => validateParams('redos:1', redos, { a: 'a'.repeat(40) + '!' }))).toBe('Invalid params: params.a must match pattern "^(a+)+$"');
    expect(refusal(() => validateParams('redos:1', redos, { a: 'a'.repeat(1_000_000) + '!' }))).toBe('Invalid params: params.a must match pattern "^(a+)+$"');
    expect(() => validateParams('redos:1', redos, { a: 'a'.repeat(40) })).not.toThrow();
  });

  it('keeps the meaning of ordinary patterns and patternProperties (ECMAScript syntax)', () => {
    const schema = {
      type: 'object',
      properties: {
        date: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
        code: { type: 'string', pattern: '^\\u0041[\\u{1F600}-\\u{1F64F}]$' },
        word: { type: 'string', pattern: '^\\S+$' },
        line: { type: 'string', pattern: '^.+$' },
      },
      patternProperties: { '^x_': { type: 'integer' } },
      additionalProperties: false,
    };
    expect(() => validateParams('plain:1', schema, { date: '2024-05-01', code: 'A😀', word: 'abc', line: 'one', x_n: 3 })).not.toThrow();
    expect(refusal(() => validateParams('plain:1', schema, { date: '2024-5-1' }))).toBe('Invalid params: params.date must match pattern "^\\d{4}-\\d{2}-\\d{2}$"');
    expect(refusal(() => validateParams('plain:1', schema, { code: 'A!' }))).toMatch(/^Invalid params: params\.code must match pattern/);
    // JavaScript's \s takes in U+00A0 and its . leaves out \r, where RE2's do not.
    expect(refusal(() => validateParams('plain:1', schema, { word: 'a\u00a0b' }))).toMatch(/^Invalid params: params\.word must match pattern/);
    expect(refusal(() => validateParams('plain:1', schema, { line: 'a\rb' }))).toMatch(/^Invalid params: params\.line must match pattern/);
    expect(refusal(() => validateParams('plain:1', schema, { x_n: 'three' }))).toBe('Invalid params: params.x_n must be integer');
    expect(refusal(() => validateParams('plain:1', schema, { y: 1 }))).toBe("Invalid params: params must NOT have additional properties ('y')");
  });

  it('refuses a schema whose pattern needs backtracking (stored before uploads were checked for it), naming the pattern', () => {
    const lookahead = { type: 'object', properties: { a: { type: 'string', pattern: '^(?!admin)' } } };
    expect(refusal(() => validateParams('look:1', lookahead, { a: 'x' }))).toBe(
      "The script's params_schema is not a valid JSON Schema: pattern \"^(?!admin)\" is not supported (invalid or unsupported Perl syntax: `(?!`): patterns are matched in linear time, as RE2 does, which has no backreferences, lookahead or lookbehind and repeats at most 1000 times",
    );
    const backreference = { type: 'object', patternProperties: { '^(a)\\1$': { type: 'integer' } } };
    expect(refusal(() => validateParams('back:1', backreference, {}))).toMatch(/^The script's params_schema is not a valid JSON Schema: pattern "\^\(a\)\\\\1\$" is not supported/);
  });

  it('refuses a schema that takes too long to compile, and remembers it', () => {
    const properties = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`p${i}`, { type: 'string', pattern: `^x${i}` }]));
    const refused = "The script's params_schema is not a valid JSON Schema: the schema takes longer than 1000 ms to compile: make it smaller";
    expect(refusal(() => validateParams('slow:1', { type: 'object', properties }, {}))).toBe(refused);
    // Not compiled again for each run of the version.
    const started = Date.now();
    expect(refusal(() => validateParams('slow:1', { type: 'object', properties }, {}))).toBe(refused);
    expect(Date.now() - started).toBeLessThan(500);
  }, 30_000);

  it(`stops a check that takes longer than ${paramsCheckMs} ms and refuses the run`, () => {
    const tooLong = `Invalid params: they could not be checked against the script's params_schema within ${paramsCheckMs} ms`;
    // Linear, but a pattern whose automaton explodes costs its size for every character: seconds for 200,000.
    let text = 'a';
    for (let i = 0, seed = 1; i < 200_000; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      text += seed & 0x10000 ? 'a' : 'b';
    }
    const costly = { type: 'object', properties: { a: { type: 'string', pattern: 'a[ab]{200}b$' } } };
    let started = Date.now();
    expect(refusal(() => validateParams('costly:1', costly, { a: text + 'c' }))).toBe(tooLong);
    expect(Date.now() - started).toBeLessThan(5_000);
    // uniqueItems compares every pair of items.
    const unique = { type: 'object', properties: { list: { type: 'array', uniqueItems: true } } };
    started = Date.now();
    expect(refusal(() => validateParams('unique:1', unique, { list: Array.from({ length: 60_000 }, (_, i) => [i]) }))).toBe(tooLong);
    expect(Date.now() - started).toBeLessThan(5_000);
    // The same schemas check small params as before, patterns compiled afresh after the stop.
    expect(() => validateParams('costly:1', costly, { a: `a${'ab'.repeat(100)}ab` })).not.toThrow();
    expect(refusal(() => validateParams('costly:1', costly, { a: 'ab' }))).toBe('Invalid params: params.a must match pattern "a[ab]{200}b$"');
    expect(() => validateParams('unique:1', unique, { list: [[1], [2]] })).not.toThrow();
    expect(refusal(() => validateParams('unique:1', unique, { list: [[1], [1]] }))).toMatch(/^Invalid params: params\.list must NOT have duplicate items/);
    expect(refusal(() => validateParams('redos:1', redos, { a: 'a'.repeat(40) + '!' }))).toBe('Invalid params: params.a must match pattern "^(a+)+$"');
  });
});
