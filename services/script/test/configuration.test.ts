import { InvalidArgument } from '@gef/common';
import { parseConfiguration } from '../src/domain/configuration';

describe('parseConfiguration', () => {
  it('reads the fields the platform uses and keeps the rest', () => {
    const c = parseConfiguration(
      JSON.stringify({
        name: ' Sample Script ',
        description: 'Counts things',
        runtime: 'python3',
        cpu_limit: 1.5,
        memory_limit: 1073741824,
        timeout: 3600,
        params_schema: { type: 'object', properties: { n: { type: 'integer' } } },
        environment: 'trends.earth-environment',
        environment_version: '0.1.6',
        id: 'old-id',
      }),
    );
    expect(c).toMatchObject({
      name: 'Sample Script',
      slug: 'sample-script',
      description: 'Counts things',
      runtime: 'python3',
      cpuLimit: 1.5,
      memoryLimit: 1073741824,
      timeout: 3600,
      paramsSchema: { type: 'object' },
    });
    expect(c.raw['environment_version']).toBe('0.1.6');
  });

  it('takes the longest timeout, surrogate pairs and the largest memory_limit', () => {
    const c = parseConfiguration('{"name": "x \\ud83d\\ude00", "timeout": 604800, "cpu_limit": 0.25, "memory_limit": 9007199254740991}');
    expect(c).toMatchObject({ name: 'x \u{1f600}', timeout: 604800, cpuLimit: 0.25, memoryLimit: 9007199254740991 });
  });

  it('applies defaults', () => {
    const c = parseConfiguration('\uFEFF{"name": "x"}');
    expect(c).toMatchObject({ description: '', runtime: 'python3', cpuLimit: null, memoryLimit: null, timeout: null, paramsSchema: null });
  });

  it.each([
    ['not json', /not valid JSON/],
    ['[1, 2]', /must be a JSON object/],
    ['null', /must be a JSON object/],
    ['{}', /'name' is required/],
    ['{"name": "   "}', /'name' is required/],
    ['{"name": 5}', /'name' is required/],
    ['{"name": "***"}', /letter or a digit/],
    ['{"name": "x", "description": 3}', /'description' must be a string/],
    ['{"name": "x", "runtime": "R"}', /unsupported runtime/],
    ['{"name": "x", "params_schema": [1]}', /'params_schema' must be a JSON object/],
    ['{"name": "x", "params_schema": "string"}', /'params_schema' must be a JSON object/],
    ['{"name": "x", "params_schema": {"type": "nope"}}', /'params_schema' is not a valid JSON Schema: .*type/],
    ['{"name": "x", "params_schema": {"properties": {"a": {"minimum": "one"}}}}', /'params_schema' is not a valid JSON Schema/],
    ['{"name": "697f7f99-9453-4486-aa42-4e44b8ea7dbd"}', /reads as a script id/],
    ['{"name": "x", "params_schema": {"properties": {"a": {"maximum": 1e999}}}}', /not valid JSON \(a number too large to represent\)/],
    ['{"name": "x", "memory_limit": "1g"}', /'memory_limit' must be a positive integer/],
    ['{"name": "x", "memory_limit": 1.5}', /'memory_limit' must be a positive integer/],
    ['{"name": "x", "timeout": -1}', /'timeout' must be a positive integer/],
    ['{"name": "x", "cpu_limit": 0}', /'cpu_limit' must be a positive number/],
    // The column is an integer and the runner's timers stop at 2^31-1 ms: a week is the most a run may last.
    ['{"name": "x", "timeout": 3000000000}', /'timeout' must be at most 604800 seconds \(7 days\)/],
    ['{"name": "x", "timeout": 604801}', /'timeout' must be at most 604800 seconds \(7 days\)/],
    ['{"name": "x", "memory_limit": 1e300}', /'memory_limit' must be at most 9007199254740991/],
    // NUL and unpaired surrogates: no PostgreSQL text or jsonb holds them.
    ['{"name": "a\\u0000b"}', /'name' holds a NUL character \(\\u0000\) or an unpaired surrogate, which text cannot hold/],
    ['{"name": "x", "description": "\\udc00"}', /'description' holds a NUL character/],
    ['{"name": "x", "environment": "\\ud800x"}', /'environment' holds/],
    ['{"name": "x", "extra": {"a\\u0000b": 1}}', /the key 'extra\.a\?b' holds/],
    ['{"name": "x", "extra": [1, ["\\u0000"]]}', /'extra\[1\]\[0\]' holds/],
    ['{"name": "x", "params_schema": {"properties": {"n": {"title": "\\u0000"}}}}', /'params_schema\.properties\.n\.title' holds/],
    // The name reaches other users' e-mails and logs: one line.
    ['{"name": "NDVI\\n\\nIts details: https://evil.example"}', /'name' must not hold control characters or line breaks/],
    ['{"name": "a\\rb"}', /'name' must not hold control characters/],
    ['{"name": "a\\u2028b"}', /'name' must not hold control characters/],
    ['{"name": "a\\u0085b"}', /'name' must not hold control characters/],
  ])('refuses %s', (text, message) => {
    expect(() => parseConfiguration(text)).toThrow(InvalidArgument);
    expect(() => parseConfiguration(text)).toThrow(message);
  });
});
