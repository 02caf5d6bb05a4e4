import { compileJsonSchema, InvalidJsonSchema, jsonSchemaCompileMs, JsonSchemaTimeout, validateWithin } from '../src/json-schema';
import { linearRegExp, re2Syntax } from '../src/linear-regexp';

describe('linearRegExp (JSON Schema patterns in linear time)', () => {
  // Each pattern against inputs, as JavaScript's RegExp (flag u, as Ajv uses it) answers.
  const patterns: [string, string[]][] = [
    ['^[a-z]+$', ['abc', 'abC', '', 'a\n']],
    ['^\\d{4}-\\d{2}$', ['2024-05', '2024-5', '١٢٣٤-٠٥']],
    ['b', ['abc', 'ac']],
    ['^\\u0041\\u00e9$', ['Aé', 'A']],
    ['^\\uD83D\\uDE00$', ['😀', '\ud83d']],
    ['^\\u{1F600}+$', ['😀😀', 'x']],
    ['^.$', ['😀', 'x', '\n', '\r', '\u2028', '']],
    ['^\\s+$', [' \t', '\u00a0\u3000\ufeff\v', 'x']],
    ['^\\S+$', ['abc', 'a\u00a0b', 'a b']],
    ['^[\\s,]+$', [' ,\u2029', 'x']],
    ['^[^\\s]+$', ['abc', 'a\u00a0']],
    ['^[\\b]$', ['\b', 'b']],
    ['\\bfoo\\b', ['a foo b', 'afoo']],
    ['^\\cJ$', ['\n', 'J']],
    ['^\\\\u0041$', ['\\u0041', 'A']],
    ['^[^]$', ['\n', 'x', '']],
    ['^a[]', ['a', 'a]']],
    ['^(?<year>\\d{4})$', ['2024', 'x']],
    ['^\\/api\\/v1\\.\\*$', ['/api/v1.*', '/api/v1x*']],
    ['^\\w+@\\w+\\.com$', ['a@b.com', 'é@b.com']],
    ['^(a+)+$', ['aaaa', 'aaa!']],
  ];

  it.each(patterns)('matches %j as JavaScript does', (pattern, inputs) => {
    const native = new RegExp(pattern, 'u');
    const linear = linearRegExp(pattern, 'u');
    expect(inputs.map((input) => linear.test(input))).toEqual(inputs.map((input) => native.test(input)));
  });

  it('writes ECMAScript escapes in RE2 syntax and leaves the rest', () => {
    expect(re2Syntax('^\\u0041\\u{1f600}\\uD83D\\uDE00$')).toBe('^\\x{41}\\x{1F600}\\x{1F600}$');
    expect(re2Syntax('^[a-z]\\d+(?:x|y)*$')).toBe('^[a-z]\\d+(?:x|y)*$');
  });

  it('takes time linear in the input where backtracking takes exponential time', () => {
    // JavaScript's RegExp needs hours for 40 characters here.
    const re = linearRegExp('^(a+)+$', 'u');
    expect(re.test('a'.repeat(40) + '!')).toBe(false);
    expect(re.test('a'.repeat(500_000) + '!')).toBe(false);
    expect(linearRegExp('^(x+x+)+y$', 'u').test('x'.repeat(500_000))).toBe(false);
  });

  it.each([
    ['^(a)\\1$', 'invalid escape sequence: `\\1`'],
    ['^(?<x>a)\\k<x>$', 'invalid escape sequence: `\\k`'],
    ['^(?=a)', 'invalid or unsupported Perl syntax: `(?=`'],
    ['^(?!admin)', 'invalid or unsupported Perl syntax: `(?!`'],
    ['(?<=a)b', 'invalid named capture: `(?<=a)b`'],
    ['a{1001}', 'invalid repeat count: `{1001}`'],
  ])('refuses %j, naming it and why', (pattern, reason) => {
    expect(() => linearRegExp(pattern, 'u')).toThrow(
      `pattern ${JSON.stringify(pattern)} is not supported (${reason}): patterns are matched in linear time, as RE2 does, which has no backreferences, lookahead or lookbehind and repeats at most 1000 times`,
    );
  });
});

describe('compileJsonSchema', () => {
  it('matches pattern and patternProperties with the linear engine', () => {
    const validate = compileJsonSchema({
      type: 'object',
      properties: { a: { type: 'string', pattern: '^(a+)+$' }, b: { type: 'string', pattern: '^b$' } },
      patternProperties: { '^x_': { type: 'integer' } },
      additionalProperties: false,
    });
    expect(validate({ a: 'a'.repeat(100_000) + '!' })).toBe(false);
    expect(validate.errors?.[0]).toMatchObject({ instancePath: '/a', keyword: 'pattern' });
    expect(validate({ a: 'aaa', b: 'b', x_1: 1 })).toBe(true);
    expect(validate({ a: 'aaa', b: 'a' })).toBe(false);
    expect(validate({ x_1: 'one' })).toBe(false);
    expect(validate({ y: 1 })).toBe(false);
  });

  it.each([
    ['pattern', { type: 'object', properties: { a: { type: 'string', pattern: '^(?!admin)' } } }, '^(?!admin)'],
    ['patternProperties', { type: 'object', patternProperties: { '^(a)\\1$': { type: 'integer' } } }, '^(a)\\1$'],
    ['pattern under items (2020-12)', { $schema: 'https://json-schema.org/draft/2020-12/schema', items: { pattern: '(?<=x)y' } }, '(?<=x)y'],
  ])('refuses a schema whose %s needs backtracking, naming the pattern', (_what, schema, pattern) => {
    let error: unknown;
    try {
      compileJsonSchema(schema);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidJsonSchema);
    expect((error as Error).message).toContain(`pattern ${JSON.stringify(pattern)} is not supported`);
  });
});

describe('compileJsonSchema, schema after schema', () => {
  const withId = (type: string) => ({ type: 'object', properties: { a: { $id: 'https://example.org/shared', type }, b: { $ref: 'https://example.org/shared' } } });

  it("compiles two scripts' schemas that use one $id differently, each as written", () => {
    const strings = compileJsonSchema(withId('string'));
    const numbers = compileJsonSchema(withId('number'));
    expect([strings({ a: 'x', b: 'y' }), strings({ a: 1 })]).toEqual([true, false]);
    expect([numbers({ a: 1, b: 2 }), numbers({ a: 'x' })]).toEqual([true, false]);
  });

  it('keeps validators compiled before the engines were made anew', () => {
    const first = compileJsonSchema({ type: 'object', properties: { n: { type: 'integer', minimum: 3 } }, required: ['n'] });
    for (let i = 0; i < 250; i++) compileJsonSchema({ type: 'object', properties: { [`p${i}`]: { type: 'string', pattern: `^${i}` } } });
    expect([first({ n: 3 }), first({ n: 2 }), first({})]).toEqual([true, false, false]);
  });
});

describe('compileJsonSchema time', () => {
  it(`refuses a schema that takes longer than ${jsonSchemaCompileMs} ms to compile, and compiles others afterwards`, () => {
    // Two thousand properties: 4 s of Ajv's time.
    const properties = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`p${i}`, { type: 'string', pattern: `^x${i}` }]));
    const started = Date.now();
    expect(() => compileJsonSchema({ type: 'object', properties })).toThrow(
      new InvalidJsonSchema(`the schema takes longer than ${jsonSchemaCompileMs} ms to compile: make it smaller`),
    );
    expect(Date.now() - started).toBeLessThan(jsonSchemaCompileMs + 4_000);
    const validate = compileJsonSchema({ type: 'object', properties: { a: { type: 'string', pattern: '^a' } }, required: ['a'] });
    expect([validate({ a: 'ab' }), validate({ a: 'b' }), validate({})]).toEqual([true, false, false]);
  }, 30_000);
});

describe('validateWithin', () => {
  it('answers as the validator does', () => {
    const validate = compileJsonSchema({ type: 'array', items: { type: 'string', pattern: '^[0-9]+$' } });
    expect(validateWithin(validate, ['1', '22'], 100)).toBe(true);
    expect(validateWithin(validate, ['1', 'x'], 100)).toBe(false);
    expect(validate.errors?.[0]).toMatchObject({ instancePath: '/1', keyword: 'pattern' });
  });

  it('stops a validation at its time limit, and validates again afterwards', () => {
    const validate = compileJsonSchema({ type: 'array', uniqueItems: true });
    const started = Date.now();
    expect(() => validateWithin(validate, Array.from({ length: 60_000 }, (_, i) => [i]), 50)).toThrow(JsonSchemaTimeout);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(validateWithin(validate, [[1], [2]], 100)).toBe(true);
    expect(validateWithin(validate, [[1], [1]], 100)).toBe(false);
  });
});
