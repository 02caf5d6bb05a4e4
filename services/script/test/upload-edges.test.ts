import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { InvalidArgument } from '@gef/common';
import { script, user } from '@gef/protos';
import { checkFileName } from '../src/domain/script-uploads';
import { readUploadStream } from '../src/handlers/upload-stream';
import { actorFromCaller } from '../src/mappers/caller-mapper';
import { timestampToIso } from '../src/mappers/timestamp-mapper';

describe('checkFileName', () => {
  it.each([
    ['My First Script.tar.gz', 'My First Script.tar.gz'],
    ['trends.earth 1.0.3.TAR.GZ', 'trends.earth 1.0.3.TAR.GZ'],
    ['C:\\Users\\me\\script v2.tar.gz', 'script v2.tar.gz'],
    ['/tmp/dir/a.b.c.tar.gz', 'a.b.c.tar.gz'],
  ])('accepts %j as %j', (raw, name) => {
    expect(checkFileName(raw)).toBe(name);
  });

  it.each(['script.zip', 'script.tgz', 'script.tar', '.tar.gz', '', 'x.tar.gz.exe', 'a\u0000b.tar.gz', '\udc00.tar.gz'])('refuses %j', (raw) => {
    expect(() => checkFileName(raw)).toThrow(InvalidArgument);
  });
});

describe('readUploadStream', () => {
  const header = (fileName: string) => create(script.CreateScriptRequestSchema, { part: { case: 'header', value: { fileName } } });
  const chunk = (text: string) => create(script.CreateScriptRequestSchema, { part: { case: 'chunk', value: Buffer.from(text) } });
  async function* messages(...list: script.CreateScriptRequest[]) {
    yield* list;
  }

  it('splits the header from the chunks', async () => {
    const { header: h, chunks } = await readUploadStream(messages(header('a.tar.gz'), chunk('ab'), chunk('cd')));
    expect(h.fileName).toBe('a.tar.gz');
    const parts: string[] = [];
    for await (const c of chunks) parts.push(Buffer.from(c).toString());
    expect(parts).toEqual(['ab', 'cd']);
  });

  it('refuses an upload without a header first, or a second header', async () => {
    await expect(readUploadStream(messages(chunk('ab')))).rejects.toThrow(InvalidArgument);
    await expect(readUploadStream(messages())).rejects.toThrow(InvalidArgument);
    const { chunks } = await readUploadStream(messages(header('a.tar.gz'), header('b.tar.gz')));
    await expect((async () => { for await (const _ of chunks) void _; })()).rejects.toThrow(/Only chunks/);
  });
});

describe('mappers', () => {
  it('keeps microseconds when turning a Timestamp into SQL text', () => {
    expect(timestampToIso({ ...timestampFromDate(new Date('2026-11-28T05:13:18.000Z')), nanos: 123_456_789 })).toBe('2026-11-28T05:13:18.123456Z');
  });

  it('reads the caller, lower-casing the id; anonymous is undefined', () => {
    expect(actorFromCaller(create(user.CallerSchema, { userId: 'ABC', role: user.Role.ADMIN }))).toEqual({ userId: 'abc', role: 'ADMIN' });
    expect(actorFromCaller(create(user.CallerSchema, { userId: 'x' }))).toEqual({ userId: 'x', role: 'USER' });
    expect(actorFromCaller(undefined)).toBeUndefined();
  });
});
