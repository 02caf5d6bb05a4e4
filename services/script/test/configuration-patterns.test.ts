import { InvalidArgument } from '@gef/common';
import { parseConfiguration } from '../src/domain/configuration';

const linearOnly = 'patterns are matched in linear time, as RE2 does, which has no backreferences, lookahead or lookbehind and repeats at most 1000 times';

// Runs match params_schema patterns in linear time (RE2): a pattern that needs backtracking
// is refused at upload rather than at every run.
describe('configuration.json: params_schema patterns', () => {
  it.each([
    ['a lookahead', { type: 'object', properties: { a: { type: 'string', pattern: '^(?!admin)' } } }, 'pattern "^(?!admin)" is not supported (invalid or unsupported Perl syntax: `(?!`)'],
    ['a lookbehind', { type: 'array', items: { type: 'string', pattern: '(?<=x)y' } }, 'pattern "(?<=x)y" is not supported (invalid named capture: `(?<=x)y`)'],
    ['a backreference', { type: 'object', patternProperties: { '^(a)\\1$': { type: 'integer' } } }, 'pattern "^(a)\\\\1$" is not supported (invalid escape sequence: `\\1`)'],
  ])('refuses %s (invalid_archive), naming the pattern', (_name, schema, reason) => {
    let error: unknown;
    try {
      parseConfiguration(JSON.stringify({ name: 'x', params_schema: schema }));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidArgument);
    expect((error as InvalidArgument).reason).toBe('invalid_archive');
    expect((error as Error).message).toBe(`Invalid configuration.json: 'params_schema' is not a valid JSON Schema: ${reason}: ${linearOnly}`);
  });

  it('takes patterns in ECMAScript syntax that RE2 can match, catastrophic ones included', () => {
    const schema = {
      type: 'object',
      properties: { a: { type: 'string', pattern: '^(a+)+$' }, b: { type: 'string', pattern: '^\\u0041\\s\\d{2,4}$' } },
      patternProperties: { '^(?<prefix>x|y)_\\w+$': { type: 'integer' } },
    };
    expect(parseConfiguration(JSON.stringify({ name: 'x', params_schema: schema })).paramsSchema).toEqual(schema);
  });
});
