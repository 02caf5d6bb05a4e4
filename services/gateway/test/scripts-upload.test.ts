/**
 * Uploads through the gateway (POST and PATCH /api/v1/script…): the multipart `file` part
 * is streamed into the script service's client-streaming RPC as it arrives, with
 * backpressure and limits applied while it streams. The script service is a fake.
 */
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { script, user } from '@gef/protos';
import {
  closing,
  fakeScript,
  multipart,
  multipartType,
  otherId,
  ownerId,
  partHead,
  quietCancelledCalls,
  recordUpload,
  send,
  startScriptStack,
  until,
  writeOrStall,
  type ScriptStack,
  type UploadRecord,
} from './scripts-fakes';
import { uploadMessageBytes } from '../src/routes/scripts';
import { request } from './support';

jest.setTimeout(60_000);

const limit = 1024 * 1024;
let stack: ScriptStack;
let token: string;

beforeAll(async () => {
  quietCancelledCalls();
  // The test limiter's windows never end, and one account uploads here some twenty times: the
  // upload rate limits have their own test below.
  stack = await startScriptStack({ UPLOAD_LIMIT_BYTES: String(limit), RATE_LIMIT_UPLOAD_PER_ACCOUNT: '10000/60' });
  token = await stack.keycloak.token(ownerId);
});
afterAll(() => stack.stop());

let record: UploadRecord;
let calls: number;
beforeEach(() => {
  record = { bytes: 0, chunks: [] };
  calls = 0;
  stack.handlers.script.createScript = async (requests, ctx) => {
    calls++;
    await recordUpload(requests, record, { signal: ctx.signal });
    return create(script.CreateScriptResponseSchema, { script: fakeScript() });
  };
  stack.handlers.script.updateScript = async (requests, ctx) => {
    calls++;
    await recordUpload(requests, record, { signal: ctx.signal });
    return create(script.UpdateScriptResponseSchema, { script: fakeScript({ version: 2, status: script.ScriptStatus.PENDING }) });
  };
});

const auth = () => ({ Authorization: `Bearer ${token}` });
const post = (body: Buffer, headers: Record<string, string | number> = {}, path = '/api/v1/script', method = 'POST') =>
  request(stack.gateway.url, path, { method, headers: { ...auth(), 'Content-Type': multipartType, 'Content-Length': body.length, ...headers }, body });

describe('POST /api/v1/script', () => {
  it('streams the file part into CreateScript with the caller and the file name, ignoring other parts', async () => {
    const archive = randomBytes(300_000);
    const body = multipart([
      { name: 'metadata', data: JSON.stringify({ public: true }), contentType: 'application/json' },
      { name: 'file', filename: 'My First Script.v2.tar.gz', data: archive },
      { name: 'notes', filename: 'notes.txt', data: 'ignored', contentType: 'text/plain' },
    ]);
    const res = await post(body);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({
      data: {
        id: '0d9b2a41-7c3f-4e29-b1c8-55d1f0e2a7c4',
        name: 'My First Script',
        slug: 'my-first-script',
        description: '',
        status: 'PENDING',
        public: false,
        user_id: ownerId,
        created_at: '2026-11-28T05:13:18.123000',
        updated_at: '2026-11-28T05:13:19.000000',
        version: 1,
        runtime: 'python3',
        cpu_limit: null,
        memory_limit: null,
        timeout: null,
      },
    });
    expect(record.header?.fileName).toBe('My First Script.v2.tar.gz');
    expect(record.header?.caller).toMatchObject({ userId: ownerId, role: user.Role.USER });
    expect(record.header?.idOrSlug).toBe('');
    expect(Buffer.concat(record.chunks).equals(archive)).toBe(true);
    // In messages of at most uploadMessageBytes, whatever the size of the socket reads.
    expect(Math.max(...record.chunks.map((c) => c.length))).toBeLessThanOrEqual(uploadMessageBytes);
    expect(record.outcome).toBe('end');
  });

  it('keeps a UTF-8 file name and drops any directory part', async () => {
    const res = await post(multipart([{ name: 'file', filename: 'C:\\Users\\ana\\Análise ñ.tar.gz', data: 'x' }]));
    expect(res.status).toBe(200);
    expect(record.header?.fileName).toBe('Análise ñ.tar.gz');
  });

  it('passes bytes on to the service before the upload has ended', async () => {
    const first = randomBytes(200_000);
    const rest = randomBytes(200_000);
    const res = await send(stack.gateway.url, '/api/v1/script', {
      headers: { ...auth(), 'Content-Type': multipartType, 'Transfer-Encoding': 'chunked' },
      write: async (req) => {
        req.write(partHead({ name: 'file', filename: 'a.tar.gz' }, true));
        req.write(first);
        // The service has bytes while the client still holds the rest.
        await until(() => record.bytes > 0, 5000, 'the first bytes at the service');
        expect(record.outcome).toBeUndefined();
        req.write(rest);
        req.end(closing);
      },
    });
    expect(res.status).toBe(200);
    expect(Buffer.concat(record.chunks).equals(Buffer.concat([first, rest]))).toBe(true);
  });

  it('accepts a file of exactly UPLOAD_LIMIT_BYTES', async () => {
    const res = await post(multipart([{ name: 'file', filename: 'a.tar.gz', data: randomBytes(limit) }]));
    expect(res.status).toBe(200);
    expect(record.bytes).toBe(limit);
  });

  it('refuses a file beyond UPLOAD_LIMIT_BYTES while it streams (413) and cancels the upload RPC', async () => {
    const res = await send(stack.gateway.url, '/api/v1/script', {
      headers: { ...auth(), 'Content-Type': multipartType, 'Transfer-Encoding': 'chunked' },
      write: async (req) => {
        req.write(partHead({ name: 'file', filename: 'big.tar.gz' }, true));
        // Never more than 64 KiB ahead of what the gateway took: the answer comes mid-stream.
        for (let i = 0; i < 64 && !req.destroyed; i++) {
          if (!(await writeOrStall(req, randomBytes(64 * 1024), 2000))) return;
        }
        req.end(closing);
      },
    });
    expect(res.status).toBe(413);
    expect(res.json()).toMatchObject({ status: 413, error: 'payload_too_large', detail: expect.stringContaining(`${limit} bytes`) });
    await until(() => record.outcome !== undefined, 5000, 'the RPC to end');
    expect(record.outcome).toBe('error');
    expect(record.bytes).toBeLessThanOrEqual(limit + 1);
  });

  it('refuses a declared Content-Length beyond the limit before calling the service', async () => {
    const res = await send(stack.gateway.url, '/api/v1/script', {
      headers: { ...auth(), 'Content-Type': multipartType, 'Content-Length': 10 * limit },
      write: (req) => {
        req.write(partHead({ name: 'file', filename: 'big.tar.gz' }, true));
      },
    });
    expect(res.status).toBe(413);
    expect(calls).toBe(0);
  });

  it('inflates a gzip-compressed body and applies the limit to the inflated bytes', async () => {
    const archive = randomBytes(10_000);
    const ok = await post(zlib.gzipSync(multipart([{ name: 'file', filename: 'a.tar.gz', data: archive }])), { 'Content-Encoding': 'gzip' });
    expect(ok.status).toBe(200);
    expect(Buffer.concat(record.chunks).equals(archive)).toBe(true);

    const bomb = zlib.gzipSync(multipart([{ name: 'file', filename: 'a.tar.gz', data: Buffer.alloc(3 * limit) }]));
    expect(bomb.length).toBeLessThan(limit);
    const refused = await post(bomb, { 'Content-Encoding': 'gzip' });
    expect(refused.status).toBe(413);

    const brotli = await post(zlib.brotliCompressSync(multipart([{ name: 'file', filename: 'a.tar.gz', data: 'x' }])), { 'Content-Encoding': 'br' });
    expect(brotli.status).toBe(415);
  });

  it.each<[string, Buffer]>([
    ['no parts at all', Buffer.from(`--${'----gef-test-boundary-7MA4YWxkTrZu0gW'}--\r\n`)],
    ['only other parts', multipart([{ name: 'archive', filename: 'a.tar.gz', data: 'x' }, { name: 'name', data: 'x' }])],
  ])('answers 400 for a body with %s, without calling the service', async (_name, body) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ status: 400, error: 'invalid_argument', detail: "The multipart body has no file part named 'file'" });
    expect(calls).toBe(0);
  });

  it("answers 400 for a second file part named 'file', and the RPC ends with an error (nothing stored)", async () => {
    const res = await post(
      multipart([
        { name: 'file', filename: 'a.tar.gz', data: randomBytes(50_000) },
        { name: 'notes', data: 'between' },
        { name: 'file', filename: 'b.tar.gz', data: randomBytes(50_000) },
      ]),
    );
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ status: 400, error: 'invalid_argument', detail: "The multipart body has more than one file part named 'file'" });
    await until(() => record.outcome !== undefined, 5000, 'the RPC to end');
    expect(record.outcome).toBe('error');
  });

  it('ends the upload RPC only once the parts after the file were read', async () => {
    let beforeTheBodyEnded: string | undefined = 'not seen';
    const res = await send(stack.gateway.url, '/api/v1/script', {
      headers: { ...auth(), 'Content-Type': multipartType, 'Transfer-Encoding': 'chunked' },
      write: async (req) => {
        req.write(partHead({ name: 'file', filename: 'a.tar.gz' }, true));
        req.write(randomBytes(100_000));
        req.write(partHead({ name: 'notes' }));
        await until(() => record.bytes === 100_000, 5000, 'the whole file at the service');
        await new Promise((resolve) => setTimeout(resolve, 200));
        // Every byte of the file is there, but the body goes on: the upload is not over.
        beforeTheBodyEnded = record.outcome;
        req.end(Buffer.concat([Buffer.from('trailing'), closing]));
      },
    });
    expect(beforeTheBodyEnded).toBeUndefined();
    expect(res.status).toBe(200);
    expect(record.outcome).toBe('end');
  });

  it("answers 400 when 'file' is a plain field rather than a file", async () => {
    const res = await post(multipart([{ name: 'file', data: 'not a file' }]));
    expect(res.status).toBe(400);
    expect(res.json().detail).toMatch(/must be a file/);
    expect(calls).toBe(0);
  });

  it.each<[string, Record<string, string>, string | Buffer, number]>([
    ['JSON', { 'Content-Type': 'application/json' }, '{"name":"x"}', 415],
    ['plain text', { 'Content-Type': 'text/plain' }, 'x', 415],
    ['a raw archive', { 'Content-Type': 'application/gzip' }, zlib.gzipSync('x'), 415],
    ['no Content-Type', {}, 'x', 415],
    ['multipart without a boundary', { 'Content-Type': 'multipart/form-data' }, 'x', 400],
    ['multipart without a body', { 'Content-Type': multipartType }, '', 400],
    ['multipart/mixed', { 'Content-Type': `multipart/mixed; boundary=x` }, 'x', 415],
  ])('refuses %s', async (_name, headers, body, status) => {
    const res = await request(stack.gateway.url, '/api/v1/script', { method: 'POST', headers: { ...auth(), ...headers }, body });
    expect(res.status).toBe(status);
    expect(res.json()).toMatchObject({ status });
    expect(calls).toBe(0);
  });

  it('answers 400 for a body that ends inside the file part, and the RPC ends with an error', async () => {
    const body = Buffer.concat([partHead({ name: 'file', filename: 'a.tar.gz' }, true), randomBytes(100_000)]);
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(res.json().detail).toMatch(/Malformed multipart/);
    await until(() => record.outcome !== undefined, 5000, 'the RPC to end');
    expect(record.outcome).toBe('error');
  });

  it('cancels the upload RPC when the client goes away halfway', async () => {
    await expect(
      send(stack.gateway.url, '/api/v1/script', {
        headers: { ...auth(), 'Content-Type': multipartType, 'Transfer-Encoding': 'chunked' },
        write: async (req) => {
          req.write(partHead({ name: 'file', filename: 'a.tar.gz' }, true));
          req.write(randomBytes(100_000));
          await until(() => record.bytes > 0, 5000, 'the first bytes');
          req.destroy();
        },
      }),
    ).rejects.toThrow();
    await until(() => record.outcome !== undefined, 5000, 'the RPC to end');
    expect(record.outcome).toBe('error');
  });

  it("answers with the service's refusal (400 and its detail) while the client is still sending", async () => {
    stack.handlers.script.createScript = async (requests) => {
      calls++;
      for await (const m of requests) {
        if (m.part.case === 'chunk') throw new ConnectError('Invalid archive: not gzip-compressed', Code.InvalidArgument);
      }
      throw new Error('unreachable');
    };
    const res = await send(stack.gateway.url, '/api/v1/script', {
      headers: { ...auth(), 'Content-Type': multipartType, 'Transfer-Encoding': 'chunked' },
      write: async (req) => {
        req.write(partHead({ name: 'file', filename: 'a.tar.gz' }, true));
        for (let i = 0; i < 12 && !req.destroyed; i++) {
          if (!(await writeOrStall(req, randomBytes(64 * 1024), 2000))) return;
        }
        req.end(closing);
      },
    });
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ status: 400, detail: 'Invalid archive: not gzip-compressed' });
  });

  it('answers 503 when the service fails before reading the file, and keeps serving', async () => {
    stack.handlers.script.createScript = async () => {
      calls++;
      throw new ConnectError('The script service is unavailable', Code.Unavailable);
    };
    const res = await send(stack.gateway.url, '/api/v1/script', {
      headers: { ...auth(), 'Content-Type': multipartType, 'Transfer-Encoding': 'chunked' },
      write: async (req) => {
        req.write(partHead({ name: 'file', filename: 'a.tar.gz' }, true));
        for (let i = 0; i < 12 && !req.destroyed; i++) {
          if (!(await writeOrStall(req, randomBytes(64 * 1024), 2000))) return;
        }
        req.end(closing);
      },
    });
    expect(res.status).toBe(503);
    expect(res.json()).toMatchObject({ status: 503, error: 'unavailable' });
    // The gateway is still there.
    expect((await request(stack.gateway.url, '/ping')).status).toBe(200);
  });

  it('needs a token and reads nothing without one', async () => {
    const body = multipart([{ name: 'file', filename: 'a.tar.gz', data: 'x' }]);
    const res = await request(stack.gateway.url, '/api/v1/script', { method: 'POST', headers: { 'Content-Type': multipartType }, body });
    expect(res.status).toBe(401);
    expect(res.json().error).toBe('authorization_required');
    expect(calls).toBe(0);
  });

  it('refuses unknown query parameters', async () => {
    const res = await post(multipart([{ name: 'file', filename: 'a.tar.gz', data: 'x' }]), {}, '/api/v1/script?public=1');
    expect(res.status).toBe(400);
    expect(calls).toBe(0);
  });
});

describe('backpressure', () => {
  let big: ScriptStack;
  beforeAll(async () => {
    big = await startScriptStack({ UPLOAD_LIMIT_BYTES: String(512 * 1024 * 1024) });
  });
  afterAll(() => big.stop());

  it('holds the client back while the service does not read, then delivers every byte', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const seen: UploadRecord = { bytes: 0, chunks: [] };
    big.handlers.script.createScript = async (requests, ctx) => {
      await recordUpload(requests, seen, { signal: ctx.signal, keep: false, beforeChunk: (n) => (n === 1 ? gate : Promise.resolve()) });
      return create(script.CreateScriptResponseSchema, { script: fakeScript() });
    };
    const chunk = randomBytes(256 * 1024);
    const total = 128 * 1024 * 1024;
    let written = 0;
    let stalledAt = -1;
    const res = await send(big.gateway.url, '/api/v1/script', {
      headers: { Authorization: `Bearer ${await big.keycloak.token(ownerId)}`, 'Content-Type': multipartType, 'Transfer-Encoding': 'chunked' },
      write: async (req) => {
        req.write(partHead({ name: 'file', filename: 'a.tar.gz' }, true));
        while (written < total) {
          const flowing = await writeOrStall(req, chunk, 1000);
          written += chunk.length;
          if (!flowing && stalledAt < 0) {
            // The service is not reading: the gateway has stopped taking bytes.
            stalledAt = written;
            release();
            await new Promise<void>((resolve) => req.once('drain', resolve));
          }
        }
        req.end(closing);
      },
    });
    expect(res.status).toBe(200);
    expect(stalledAt).toBeGreaterThan(0);
    // Socket buffers and a few stream buffers, far from the whole upload.
    expect(stalledAt).toBeLessThan(16 * 1024 * 1024);
    expect(seen.bytes).toBe(total);
    expect(seen.outcome).toBe('end');
  });
});

describe('PATCH /api/v1/script/{script}', () => {
  it('streams a multipart file into UpdateScript for that script', async () => {
    const archive = randomBytes(50_000);
    const res = await post(multipart([{ name: 'file', filename: 'v2.tar.gz', data: archive }]), {}, '/api/v1/script/my-first-script', 'PATCH');
    expect(res.status).toBe(200);
    expect(res.json().data).toMatchObject({ version: 2, slug: 'my-first-script', status: 'PENDING' });
    expect(record.header).toMatchObject({ idOrSlug: 'my-first-script', fileName: 'v2.tar.gz' });
    expect(Buffer.concat(record.chunks).equals(archive)).toBe(true);
  });

  it('changes name and description from JSON', async () => {
    let seen: script.UpdateScriptMetadataRequest | undefined;
    stack.handlers.script.updateScriptMetadata = (req) => {
      seen = req;
      return create(script.UpdateScriptMetadataResponseSchema, { script: fakeScript({ name: req.name ?? 'My First Script', description: req.description ?? '' }) });
    };
    const patch = (body: string) =>
      request(stack.gateway.url, '/api/v1/script/my-first-script', { method: 'PATCH', headers: { ...auth(), 'Content-Type': 'application/json' }, body });

    const res = await patch(JSON.stringify({ name: 'Renamed', description: 'New words', slug: 'ignored' }));
    expect(res.status).toBe(200);
    expect(res.json().data).toMatchObject({ name: 'Renamed', description: 'New words', slug: 'my-first-script' });
    expect(seen).toMatchObject({ idOrSlug: 'my-first-script', name: 'Renamed', description: 'New words', caller: { userId: ownerId } });

    expect((await patch(JSON.stringify({ description: null }))).status).toBe(200);
    expect(seen?.description).toBe('');
    expect(seen?.name).toBeUndefined();

    const gz = await request(stack.gateway.url, '/api/v1/script/my-first-script', {
      method: 'PATCH',
      headers: { ...auth(), 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' },
      body: zlib.gzipSync(JSON.stringify({ name: 'Zipped' })),
    });
    expect(gz.status).toBe(200);
    expect(seen?.name).toBe('Zipped');
  });

  it.each<[string, Record<string, string>, string, number, RegExp]>([
    ['an empty object', { 'Content-Type': 'application/json' }, '{}', 400, /Nothing to update/],
    ['no body', {}, '', 400, /required/],
    ['an empty name', { 'Content-Type': 'application/json' }, '{"name":"  "}', 400, /name/],
    ['a JSON array', { 'Content-Type': 'application/json' }, '[]', 400, /object/],
    ['broken JSON', { 'Content-Type': 'application/json' }, '{nope', 400, /Malformed JSON/],
    ['plain text', { 'Content-Type': 'text/plain' }, 'x', 415, /multipart\/form-data/],
  ])('refuses %s', async (_name, headers, body, status, detail) => {
    const res = await request(stack.gateway.url, '/api/v1/script/my-first-script', { method: 'PATCH', headers: { ...auth(), ...headers }, body });
    expect(res.status).toBe(status);
    expect(res.json().detail).toMatch(detail);
  });
});

describe('upload rate limits', () => {
  let limited: ScriptStack;
  let uploads: number;

  beforeAll(async () => {
    limited = await startScriptStack({ RATE_LIMIT_UPLOAD_PER_ACCOUNT: '3/60', RATE_LIMIT_UPLOAD_PER_CLIENT: '5/60' });
    const answer = async (requests: AsyncIterable<unknown>) => {
      uploads++;
      for await (const _ of requests) void _;
    };
    limited.handlers.script.createScript = async (requests) => {
      await answer(requests);
      return create(script.CreateScriptResponseSchema, { script: fakeScript() });
    };
    limited.handlers.script.updateScript = async (requests) => {
      await answer(requests);
      return create(script.UpdateScriptResponseSchema, { script: fakeScript({ version: 2 }) });
    };
  });
  afterAll(() => limited.stop());

  const upload = (t: string, method: 'POST' | 'PATCH' = 'POST') => {
    const body = multipart([{ name: 'file', filename: 'a.tar.gz', data: randomBytes(50_000) }]);
    return request(limited.gateway.url, method === 'POST' ? '/api/v1/script' : '/api/v1/script/my-first-script', {
      method,
      headers: { Authorization: `Bearer ${t}`, 'Content-Type': multipartType, 'Content-Length': body.length },
      body,
    });
  };

  it('counts POST and PATCH uploads per account and per client, answering 429 rate_limited with Retry-After before the service is called', async () => {
    uploads = 0;
    const owner = await limited.keycloak.token(ownerId);
    const other = await limited.keycloak.token(otherId);
    expect([(await upload(owner)).status, (await upload(owner, 'PATCH')).status, (await upload(owner)).status]).toEqual([200, 200, 200]);
    // The account's fourth in the window.
    const refused = await upload(owner, 'PATCH');
    expect(refused.status).toBe(429);
    expect(refused.json()).toMatchObject({ status: 429, error: 'rate_limited', retry_after: expect.any(Number) });
    expect(refused.headers['retry-after']).toBe(String(refused.json().retry_after));
    expect(uploads).toBe(3);
    // Another account from the same client: the client's five (the refused one counted too).
    expect((await upload(other)).status).toBe(200);
    expect((await upload(other)).status).toBe(429);
    expect(uploads).toBe(4);
    // A metadata change is no upload.
    limited.handlers.script.updateScriptMetadata = () => create(script.UpdateScriptMetadataResponseSchema, { script: fakeScript() });
    const meta = await request(limited.gateway.url, '/api/v1/script/my-first-script', {
      method: 'PATCH',
      headers: { Authorization: `Bearer ${owner}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'Renamed' }),
    });
    expect(meta.status).toBe(200);
  });
});
