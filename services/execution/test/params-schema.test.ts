import { InvalidArgument } from '@gef/common';
import { CompileBudget, validateParams } from '../src/domain/params-schema';
import { checkLines, parseLevel, storableJson } from '../src/domain/log-lines';

function message(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgument);
    return (err as Error).message;
  }
  throw new Error('expected InvalidArgument');
}

describe('params_schema', () => {
  const schema = {
    type: 'object',
    properties: { area: { enum: ['global', 'local'] }, year: { type: 'integer' } },
    additionalProperties: false,
  };

  it('accepts params that satisfy the schema, and anything without one', () => {
    expect(() => validateParams('s:1', schema, { area: 'global', year: 2020 })).not.toThrow();
    expect(() => validateParams('s:0', undefined, { anything: true })).not.toThrow();
    expect(() => validateParams('s:0b', {}, { anything: true })).not.toThrow();
  });

  it('names the schema error', () => {
    expect(message(() => validateParams('s:1', schema, { area: 'moon' }))).toBe('Invalid params: params.area must be equal to one of the allowed values ("global", "local")');
    expect(message(() => validateParams('s:1', schema, { extra: 1 }))).toBe("Invalid params: params must NOT have additional properties ('extra')");
    expect(message(() => validateParams('s:1', schema, { year: '2020' }))).toBe('Invalid params: params.year must be integer');
  });

  it('understands draft 2020-12 schemas and refuses broken ones', () => {
    const modern = {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      properties: { a: { type: 'array', prefixItems: [{ type: 'string' }] } },
      required: ['a'],
    };
    expect(message(() => validateParams('s:2', modern, {}))).toBe("Invalid params: params must have required property 'a'");
    expect(message(() => validateParams('s:2', modern, { a: [1] }))).toBe('Invalid params: params.a.0 must be string');
    expect(() => validateParams('s:2', modern, { a: ['x', 2] })).not.toThrow();
    expect(message(() => validateParams('s:3', { type: 'no-such-type' }, {}))).toMatch(/^The script's params_schema is not a valid JSON Schema/);
  });
});

describe('compile time per user', () => {
  const schema = { type: 'object', properties: { a: { type: 'string' } } };
  const refusal = (fn: () => void): { reason?: string; details?: Record<string, unknown> } | undefined => {
    try {
      fn();
    } catch (err) {
      return err as { reason?: string; details?: Record<string, unknown> };
    }
    return undefined;
  };

  it('refuses a user who spent their share on new schemas, for a while; versions compiled already still run', () => {
    let now = 0;
    const budget = new CompileBudget(5000, () => now);
    budget.charge('u1', 6000);
    const refused = refusal(() => validateParams('budget:new', schema, {}, 'u1', budget));
    expect(refused).toMatchObject({ reason: 'rate_limited', details: { retry_after: expect.any(Number) } });
    expect(refused!.details!['retry_after']).toBeGreaterThanOrEqual(12);
    // Someone else compiles it: cached, it costs u1 nothing.
    validateParams('budget:new', schema, {}, 'u2', budget);
    expect(() => validateParams('budget:new', schema, {}, 'u1', budget)).not.toThrow();
    // Refilled over time.
    now += 15_000;
    expect(() => validateParams('budget:other', schema, {}, 'u1', budget)).not.toThrow();
  });

  it('forgets users whose share is whole again', () => {
    let now = 0;
    const budget = new CompileBudget(5000, () => now);
    for (let i = 0; i < 100; i++) budget.charge(`user-${i}`, 100);
    expect(budget.size).toBe(100);
    now += 60_000;
    budget.check('user-0');
    expect(budget.size).toBe(99);
  });
});

describe('log lines', () => {
  it('reads the REST level names in any case, WARN as WARNING', () => {
    expect(['debug', 'Info', 'WARN', 'warning', 'error', 'CRITICAL', 'trace'].map(parseLevel)).toEqual(['DEBUG', 'INFO', 'WARNING', 'WARNING', 'ERROR', 'CRITICAL', undefined]);
  });

  it('cuts long lines and refuses a batch numbering a line twice', () => {
    const [long] = checkLines([{ text: 'x'.repeat(40_000), level: 'INFO', seq: 0 }]);
    expect(long!.text.length).toBeLessThan(33_000);
    expect(message(() => checkLines([{ text: 'a', level: 'INFO', seq: 1 }, { text: 'b', level: 'INFO', seq: 1 }]))).toBe('Log sequence number 1 appears twice');
    expect(message(() => checkLines(Array.from({ length: 10_001 }, () => ({ text: 'a', level: 'INFO' as const, seq: null }))))).toBe('At most 10000 lines per request');
  });
});

describe('what PostgreSQL cannot store', () => {
  it('becomes U+FFFD in log lines: NUL and unpaired surrogates, pairs kept', () => {
    const [line] = checkLines([{ text: 'a\u0000b \ud800 c \udc00 d 😀', level: 'INFO', seq: 1 }]);
    expect(line!.text).toBe('a\uFFFDb \uFFFD c \uFFFD d 😀');
  });

  it('is never made by cutting a long line inside a surrogate pair', () => {
    const [line] = checkLines([{ text: `${'a'.repeat(32 * 1024 - 1)}😀b`, level: 'INFO', seq: 1 }]);
    expect(line!.text).toBe(`${'a'.repeat(32 * 1024 - 1)}… [cut at ${32 * 1024} characters]`);
  });

  it('becomes U+FFFD in results, keys too; results without any are kept as given; non-JSON is refused', () => {
    expect(JSON.parse(storableJson(JSON.stringify({ 'k\u0000': ['x\u0000', { y: '\ud83d' }], n: 1 })))).toEqual({ 'k\uFFFD': ['x\uFFFD', { y: '\uFFFD' }], n: 1 });
    const plain = '{"a": [1, "😀", null]}';
    expect(storableJson(plain)).toBe(plain);
    expect(() => storableJson('{oops')).toThrow();
  });
});

