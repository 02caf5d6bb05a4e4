import zlib from 'node:zlib';
import { resources } from '../src/routes';
import { echoResource } from './echo-resource';
import { rawRequest, request, startStack, type TestRequest, type TestStack } from './support';

const json = { 'Content-Type': 'application/json' };
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
/** Claims to come from the execution service, signed by nobody. */
const forgedExecutionToken = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ iss: 'gef-execution', aud: 'gef-api', sub: 'x', scope: 'execution', att: 1, exp: 4102444800 })}.${Buffer.alloc(32).toString('base64url')}`;
const post = (body: TestRequest['body'], headers: Record<string, string> = json): TestRequest => ({ method: 'POST', headers, body });

/** [name, path, request, expected status, expected `error` or a detail pattern] */
type Row = [string, string, TestRequest, number, (string | RegExp)?];

const rows: Row[] = [
  // Bodies of the wrong shape: 400 from validation, never a 500.
  ['JSON null', '/test/echo', post('null'), 400, /must be a JSON object/],
  ['JSON array', '/test/echo', post('[{"name":"x"}]'), 400, /must be a JSON object/],
  ['JSON string', '/test/echo', post('"name"'), 400, /must be a JSON object/],
  ['JSON number', '/test/echo', post('42'), 400, /must be a JSON object/],
  ['JSON boolean', '/test/echo', post('true'), 400, /must be a JSON object/],
  ['no body', '/test/echo', post(undefined), 400, /is required/],
  ['whitespace body', '/test/echo', post('   \n'), 400, 'Malformed JSON body'],
  ['truncated JSON', '/test/echo', post('{"name":'), 400, 'Malformed JSON body'],
  ['trailing garbage', '/test/echo', post('{"name":"x"} x'), 400, 'Malformed JSON body'],
  ['single quotes', '/test/echo', post("{'name':'x'}"), 400, 'Malformed JSON body'],
  ['NaN literal', '/test/echo', post('{"name":"x","count":NaN}'), 400, 'Malformed JSON body'],
  ['wrong field type', '/test/echo', post('{"name":5}'), 400, /^name: /],
  ['empty required field', '/test/echo', post('{"name":""}'), 400, /^name: /],
  ['number too large for a double', '/test/echo', post('{"name":"x","count":1e400}'), 400, /number too large to represent/],
  ['negative infinity deep inside', '/test/echo', post('{"name":"x","tags":{"a":[-1e999]}}'), 400, /number too large to represent/],
  ['invalid UTF-8', '/test/echo', post(Buffer.from([0x7b, 0x22, 0x6e, 0xff, 0xfe, 0x22, 0x7d])), 400, /not valid UTF-8/],
  ['arrays nested 100,000 deep', '/test/echo', post('['.repeat(100_000) + ']'.repeat(100_000)), 400, /nested deeper/],
  ['objects nested 10,000 deep', '/test/echo', post('{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000)), 400, /nested deeper/],
  ['brackets inside strings do not count as nesting', '/test/echo', post(JSON.stringify({ name: '['.repeat(1000) })), 200],
  ['UTF-8 byte order mark', '/test/echo', post(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"name":"x"}')])), 200],
  ['__proto__ key is dropped', '/test/echo', post('{"name":"x","__proto__":{"admin":true}}'), 200],
  ['__proto__ key spelt with escapes is dropped', '/test/echo', post('{"name":"x","\\u005f_proto__":{"admin":true}}'), 200],
  // Beyond a double with a short exponent: 1 and 210 zeros, times 10^99.
  ['a number beyond a double, its exponent of two digits', '/test/echo', post(`{"name":"x","count":1${'0'.repeat(210)}e99}`), 400, /number too large to represent/],
  ['the same without an exponent, 309 digits', '/test/echo', post(`{"name":"x","tags":{"a":[${'9'.repeat(309)}]}}`), 400, /number too large to represent/],
  // Routes anyone may call read a few fields: 64 KiB at most, as sent and once inflated.
  ['a login body past 64 KiB', '/auth', post(JSON.stringify({ email: 'a@example.org', password: 'x'.repeat(70_000) })), 413, 'payload_too_large'],
  ['the same, gzip-compressed to 200 bytes', '/auth', post(zlib.gzipSync(JSON.stringify({ email: 'a@example.org', password: 'x'.repeat(70_000) })), { ...json, 'Content-Encoding': 'gzip' }), 413, 'payload_too_large'],
  ['a registration body past 64 KiB', '/api/v1/user', post(JSON.stringify({ email: 'a@example.org', name: 'x'.repeat(70_000) })), 413, 'payload_too_large'],
  ['duplicate keys: the last wins', '/test/echo', post('{"name":"a","name":"b"}'), 200],
  // Text no database column holds: a 400 here, not a failure where it would be stored.
  ['NUL in a JSON string', '/test/echo', post('{"name":"a\\u0000b"}'), 400, /NUL character/],
  ['NUL in a JSON key', '/test/echo', post('{"name":"x","tags":{"a\\u0000":1}}'), 400, /NUL character/],
  ['an unpaired surrogate', '/test/echo', post('{"name":"x\\ud800"}'), 400, /unpaired surrogate/],
  ['a lone low surrogate', '/test/echo', post('{"name":"\\udc00x"}'), 400, /unpaired surrogate/],
  ['a surrogate pair is text', '/test/echo', post('{"name":"\\ud83d\\ude00"}'), 200],
  // Media types and encodings.
  ['text/plain body', '/test/echo', post('{"name":"x"}', { 'Content-Type': 'text/plain' }), 415, 'unsupported_media_type'],
  ['form body', '/test/echo', post('name=x', { 'Content-Type': 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type'],
  ['multipart body', '/test/echo', post('--b--', { 'Content-Type': 'multipart/form-data; boundary=b' }), 415, 'unsupported_media_type'],
  ['latin-1 charset', '/test/echo', post('{"name":"x"}', { 'Content-Type': 'application/json; charset=iso-8859-1' }), 415, 'unsupported_media_type'],
  ['brotli', '/test/echo', post(zlib.brotliCompressSync('{"name":"x"}'), { ...json, 'Content-Encoding': 'br' }), 415, 'unsupported_media_type'],
  ['stacked encodings', '/test/echo', post(zlib.gzipSync(zlib.gzipSync('{"name":"x"}')), { ...json, 'Content-Encoding': 'gzip, gzip' }), 415, 'unsupported_media_type'],
  ['garbage encoding name', '/test/echo', post('{"name":"x"}', { ...json, 'Content-Encoding': '<script>' }), 415, 'Unsupported Content-Encoding'],
  ['truncated gzip', '/test/echo', post(zlib.gzipSync('{"name":"x"}').subarray(0, 12), { ...json, 'Content-Encoding': 'gzip' }), 400, 'Malformed compressed body'],
  ['gzip header, empty body', '/test/echo', post(Buffer.alloc(0), { ...json, 'Content-Encoding': 'gzip' }), 400, /is required/],
  ['gzip of invalid JSON', '/test/echo', post(zlib.gzipSync('{nope'), { ...json, 'Content-Encoding': 'gzip' }), 400, 'Malformed JSON body'],
  ['identity encoding', '/test/echo', post('{"name":"x"}', { ...json, 'Content-Encoding': 'identity' }), 200],
  // Paths, methods and queries.
  ['undecodable path parameter', '/api/docs/%ff', {}, 400, 'invalid_argument'],
  ['undecodable path, unknown route', '/%ff/%fe', {}, 404, 'not_found'],
  ['dot segments', '/%2e%2e/%2e%2e/etc/passwd', {}, 404, 'not_found'],
  ['encoded slash in a parameter', '/api/docs/..%2F..%2Fpackage.json', {}, 404, 'not_found'],
  // An id, slug or e-mail holding NUL names nothing: a 404 before any service sees it.
  ['NUL in a parameter', '/test/items/%00', {}, 404, 'not_found'],
  ['NUL in a script slug', '/api/v1/script/a%00b', {}, 404, 'not_found'],
  ['NUL in a user e-mail', '/api/v1/user/a%00@example.org/recover-password', { method: 'POST' }, 404, 'not_found'],
  ['undecodable query', '/ping?x=%ff&y', {}, 200],
  ['nested and prototype query keys', '/ping?a[b][c]=1&__proto__=x&constructor[prototype]=y', {}, 200],
  ['repeated query keys', '/ping?a=1&a=2&a=3', {}, 200],
  ['double slash', '//ping', {}, 404, 'not_found'],
  ['a body on a GET route is ignored', '/ping', { method: 'GET', headers: json, body: '{nope' }, 200],
  ['a JSON body to a GET-only path', '/ping', post('{nope'), 405, 'method_not_allowed'],
  ['GET on a POST-only path', '/test/echo', {}, 405, 'method_not_allowed'],
  ['a WebDAV method', '/ping', { method: 'PROPFIND' }, 405, 'method_not_allowed'],
  ['a very long unknown path', `/${'a'.repeat(8000)}`, {}, 404, 'not_found'],
  // Executions: bodies are read and checked before anything else is asked.
  ['run: truncated JSON params', '/api/v1/script/some-script/run', post('{"year":'), 400, 'Malformed JSON body'],
  ['run: gzip of invalid JSON', '/api/v1/script/some-script/run', post(zlib.gzipSync('{nope'), { ...json, 'Content-Encoding': 'gzip' }), 400, 'Malformed JSON body'],
  ['execution: undecodable id', '/api/v1/execution/%ff', {}, 400, 'invalid_argument'],
  ['execution: PATCH with malformed JSON', '/api/v1/execution/x', { method: 'PATCH', headers: json, body: '{"status":' }, 400, 'Malformed JSON body'],
  ['execution log: text/plain body', '/api/v1/execution/x/log', post('hello', { 'Content-Type': 'text/plain' }), 415, 'unsupported_media_type'],
  ['execution: PATCH with a forged execution token', '/api/v1/execution/x', { method: 'PATCH', headers: { ...json, Authorization: `Bearer ${forgedExecutionToken}` }, body: '{"progress":5}' }, 401, 'invalid_token'],
  ['execution events without a token', '/api/v1/execution/x/events', { headers: { 'Last-Event-ID': 'abc' } }, 401, 'authorization_required'],
  ['execution: DELETE is not a route', '/api/v1/execution/x', { method: 'DELETE' }, 405, 'method_not_allowed'],
  // Headers.
  ['malformed Accept-Encoding', '/swagger.json', { headers: { 'Accept-Encoding': 'gzip;q=abc, ;;, *;q=' } }, 200],
  ['Origin "null"', '/ping', { headers: { Origin: 'null' } }, 200],
  ['bogus Content-Length on GET', '/ping', { headers: { 'Content-Length': '0' } }, 200],
];

/** A stack frame: `at fn (/path/file.js:12:34)` or `at /path/file.ts:12:34`. */
const stackFrame = /\bat (?:[\w$.<>[\] ]+ \()?(?:file:\/\/)?\/[\w./@-]+:\d+:\d+/;

describe('bad input never produces a 500', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack({ BODY_LIMIT_BYTES: String(256 * 1024) }, { resources: [...resources, echoResource] });
  });
  afterAll(() => stack.stop());

  // One argument per case: Jest would take a fifth parameter of a four-element row for `done`.
  it.each(rows.map((row) => [row[0], row] as const))('%s', async (_name, [, path, req, status, expected]) => {
    const res = await request(stack.gateway.url, path, req);
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.text).not.toMatch(stackFrame);
    expect(res.text).not.toMatch(/node_modules|\.ts\b|Error:/);
    const body = res.json();
    if (status >= 400) {
      expect(body.status).toBe(status);
      expect(typeof body.detail).toBe('string');
      if (typeof expected === 'string') expect([body.error, body.detail]).toContain(expected);
      else if (expected) expect(body.detail).toMatch(expected);
    }
    if (path === '/test/echo' && status === 200) {
      expect(Object.keys(body.data)).not.toContain('admin');
      expect(Object.getPrototypeOf(body.data)).toBe(Object.prototype);
    }
  });

  /** Requests Node itself refuses: the answer is still the JSON envelope, not a bare line. */
  it.each<[string, string, number | null]>([
    ['malformed request line', 'GARBAGE\r\n\r\n', 400],
    ['unknown method', 'FOO /ping HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['header too large', `GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
    // Broken after the request reached a route, before its answer began: told, then closed.
    ['invalid chunked encoding', 'POST /test/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n', 400],
    ['both Content-Length and chunked', 'POST /test/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
  ])('%s', async (_name, raw, status) => {
    const answer = await rawRequest(stack.gateway.port, raw);
    const [head = '', body = ''] = answer.split('\r\n\r\n');
    if (status === null) expect(answer === '' || /^HTTP\/1\.1 4\d\d /.test(head)).toBe(true);
    else expect(head).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    if (body) expect(JSON.parse(body)).toMatchObject({ status });
    expect(answer).not.toMatch(stackFrame);
  });
});
