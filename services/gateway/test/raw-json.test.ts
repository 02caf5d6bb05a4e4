import { RawJson } from '../src/raw-json';

describe('RawJson', () => {
  it('writes held JSON text in place of its stand-ins, as it is', () => {
    const raw = new RawJson();
    const params = '{"values": [0, 0, 0], "note": "$& and $1 stay"}';
    const body = { data: [{ id: 'a', params: raw.hold(params), results: raw.hold('"text"') }, { id: 'b', params: raw.hold('{}'), results: null }] };
    const text = raw.stringify(body);
    expect(text).toBe(`{"data":[{"id":"a","params":${params},"results":"text"},{"id":"b","params":{},"results":null}]}`);
    expect(JSON.parse(text)).toEqual({ data: [{ id: 'a', params: { values: [0, 0, 0], note: '$& and $1 stay' }, results: 'text' }, { id: 'b', params: {}, results: null }] });
  });

  it("leaves text shaped like a stand-in alone: clients never learn the process's own", () => {
    const raw = new RawJson();
    const held = raw.hold('[1]');
    const forged = held.replace(/-[0-9a-f]{24}-/, '-000000000000000000000000-');
    expect(JSON.parse(raw.stringify({ a: held, b: forged, c: '@gef-raw-0@' }))).toEqual({ a: [1], b: forged, c: '@gef-raw-0@' });
  });

  it('is JSON.stringify when it holds nothing', () => {
    expect(new RawJson().stringify({ a: [1, 'x'] })).toBe('{"a":[1,"x"]}');
  });
});
