import { jsonTextValueCountExceeds, jsonValueCountExceeds, maxResultsBytes, maxResultsValues } from '../src/json-depth';

/** The number of JSON values in a parsed value, by the definition (keys do not count). */
function countOf(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 1;
  return 1 + (Array.isArray(value) ? value : Object.values(value)).reduce((sum: number, child) => sum + countOf(child), 0);
}

describe('result bounds', () => {
  it('are 8 MiB of JSON text and 100,000 values', () => {
    expect(maxResultsBytes).toBe(8 * 1024 * 1024);
    expect(maxResultsValues).toBe(100_000);
  });

  const samples = [
    '0',
    '"text"',
    'null',
    '[]',
    '{}',
    '[1, 2]',
    '{"a": [true]}',
    '{"a": 1, "b": "two", "c": [null, false, -1.5e3], "d": {}}',
    '[{"k": "v"}, {"k": ["x", "y"]}, []]',
    ' { "key with \\" quote and , comma": "value : with [ brackets {" , "n" : [ 1 , 2 ] } ',
    '["\\\\", "\\"", "a\\\\\\"b", {"\\\\": "\\\\"}]',
    JSON.stringify({ rows: Array.from({ length: 50 }, (_, i) => ({ i, name: `row ${i}`, tags: ['a', 'b'], ok: i % 2 === 0, none: null })) }),
  ];

  it.each(samples.map((text) => [text.length > 60 ? `${text.slice(0, 57)}...` : text, text]))('counts the values of %s alike in its text and parsed', (_shown, text) => {
    const value: unknown = JSON.parse(text);
    const n = countOf(value);
    for (const [count, exceeds] of [
      [n, false],
      [n - 1, true],
    ] as const) {
      expect([jsonTextValueCountExceeds(text, count), jsonValueCountExceeds(value, count)]).toEqual([exceeds, exceeds]);
    }
  });

  it('stops counting at the bound', () => {
    const text = `[${'0,'.repeat(2_000_000)}0]`;
    expect(jsonTextValueCountExceeds(text, maxResultsValues)).toBe(true);
    expect(jsonValueCountExceeds(JSON.parse(text), maxResultsValues)).toBe(true);
    expect(jsonTextValueCountExceeds(`[${'0,'.repeat(maxResultsValues - 2)}0]`, maxResultsValues)).toBe(false);
  });
});
