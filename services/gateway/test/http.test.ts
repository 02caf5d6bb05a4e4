import { randomBytes } from 'node:crypto';
import net from 'node:net';
import zlib from 'node:zlib';
import { resources } from '../src/routes';
import { echoResource } from './echo-resource';
import { memoryLogger, request, startGateway, startStack, type TestStack } from './support';

const limit = 64 * 1024;
const json = { 'Content-Type': 'application/json' };

describe('the HTTP edge', () => {
  let stack: TestStack;
  let url: string;
  const logs = memoryLogger();

  beforeAll(async () => {
    stack = await startStack(
      { BODY_LIMIT_BYTES: String(limit), CORS_ORIGINS: 'https://app.example.org, https://other.example.org' },
      { resources: [...resources, echoResource], logger: logs.logger },
    );
    url = stack.gateway.url;
  });
  afterAll(() => stack.stop());

  describe('error envelope', () => {
    it('unknown route: 404 not_found', async () => {
      const res = await request(url, '/api/v1/nothing-here');
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.json()).toEqual({ status: 404, detail: 'Not found', error: 'not_found' });
    });

    it('wrong method on a known path: 405 with Allow', async () => {
      const res = await request(url, '/ping/', { method: 'DELETE' });
      expect(res.status).toBe(405);
      expect(res.headers['allow']).toBe('GET, HEAD, OPTIONS');
      expect(res.json()).toMatchObject({ status: 405, error: 'method_not_allowed' });
    });

    it('a fixed path allows its own methods, not those of a {param} path beside it', async () => {
      const own = await request(url, '/api/v1/execution/user', { method: 'OPTIONS' });
      expect(own.status).toBe(204);
      expect(own.headers['allow']).toBe('GET, HEAD, OPTIONS');
      const put = await request(url, '/api/v1/execution/user', { method: 'PUT' });
      expect(put.status).toBe(405);
      expect(put.headers['allow']).toBe('GET, HEAD, OPTIONS');
      const param = await request(url, `/api/v1/execution/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`, { method: 'OPTIONS' });
      expect(param.headers['allow']).toBe('GET, HEAD, PATCH, OPTIONS');
    });

    it('OPTIONS on a known path: 204 with Allow', async () => {
      const res = await request(url, '/test/echo', { method: 'OPTIONS' });
      expect(res.status).toBe(204);
      expect(res.headers['allow']).toBe('POST, OPTIONS');
    });

    it('malformed JSON: 400 invalid_argument', async () => {
      const res = await request(url, '/test/echo', { method: 'POST', headers: json, body: '{"name": "x",' });
      expect(res.status).toBe(400);
      expect(res.json()).toEqual({ status: 400, detail: 'Malformed JSON body', error: 'invalid_argument' });
    });

    it('body too large as sent: 413 payload_too_large', async () => {
      const body = JSON.stringify({ name: 'x'.repeat(limit) });
      const res = await request(url, '/test/echo', { method: 'POST', headers: json, body });
      expect(res.status).toBe(413);
      expect(res.json()).toMatchObject({ status: 413, error: 'payload_too_large' });
      expect(res.headers['connection']).toBe('close');
    });

    it('body too large as sent, without Content-Length (chunked): 413', async () => {
      const res = await request(url, '/test/echo', {
        method: 'POST',
        headers: json,
        body: (req) => {
          for (let i = 0; i < 20; i++) req.write(Buffer.alloc(8 * 1024, 0x20));
          req.end();
        },
      });
      expect(res.status).toBe(413);
    });

    it('compressed body too large: 413, counted on the compressed bytes', async () => {
      // Random bytes do not compress: the gzip stream is larger than the limit.
      const body = zlib.gzipSync(randomBytes(limit + 1024));
      const res = await request(url, '/test/echo', {
        method: 'POST',
        headers: { ...json, 'Content-Encoding': 'gzip', 'Transfer-Encoding': 'chunked' },
        body,
      });
      expect(res.status).toBe(413);
      expect(res.json()).toMatchObject({ error: 'payload_too_large', detail: expect.stringMatching(/^Request body/) });
    });

    it('inflated body too large (gzip bomb): 413 without inflating it all', async () => {
      // 64 MiB inside a JSON string compresses to under the 64 KiB limit: only inflating finds it.
      const bomb = zlib.gzipSync(Buffer.concat([Buffer.from('{"name":"'), Buffer.alloc(64 * 1024 * 1024, 0x61), Buffer.from('"}')]), { level: 9 });
      expect(bomb.length).toBeLessThan(limit);
      const before = process.memoryUsage().rss;
      const res = await request(url, '/test/echo', { method: 'POST', headers: { ...json, 'Content-Encoding': 'gzip' }, body: bomb });
      expect(res.status).toBe(413);
      expect(res.json()).toMatchObject({ error: 'payload_too_large', detail: expect.stringMatching(/^Inflated request body/) });
      expect(process.memoryUsage().rss - before).toBeLessThan(48 * 1024 * 1024);
    });

    it('unsupported Content-Encoding: 415', async () => {
      const res = await request(url, '/test/echo', {
        method: 'POST',
        headers: { ...json, 'Content-Encoding': 'br' },
        body: zlib.brotliCompressSync(Buffer.from('{"name":"x"}')),
      });
      expect(res.status).toBe(415);
      expect(res.json()).toEqual({ status: 415, detail: 'Unsupported Content-Encoding: br', error: 'unsupported_media_type' });
    });

    it('a Content-Type that is not JSON: 415', async () => {
      const res = await request(url, '/test/echo', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: '{"name":"x"}' });
      expect(res.status).toBe(415);
    });

    it('/auth… errors also carry message and msg', async () => {
      const res = await request(url, '/auth/test', { method: 'POST', headers: json, body: '{' });
      expect(res.status).toBe(400);
      expect(res.json()).toEqual({
        status: 400,
        detail: 'Malformed JSON body',
        error: 'invalid_argument',
        message: 'Malformed JSON body',
        msg: 'Malformed JSON body',
      });
    });
  });

  describe('request bodies', () => {
    it('accepts a gzip-compressed JSON body and ignores unknown fields', async () => {
      const body = zlib.gzipSync(JSON.stringify({ name: 'Trends', extra: { a: 1 }, count: 2 }));
      const res = await request(url, '/test/echo', { method: 'POST', headers: { ...json, 'Content-Encoding': 'gzip' }, body });
      expect(res.status).toBe(200);
      expect(res.json()).toEqual({ data: { name: 'Trends', count: 2 } });
    });

    it('accepts a deflate-compressed body', async () => {
      const body = zlib.deflateSync(JSON.stringify({ name: 'Trends' }));
      const res = await request(url, '/test/echo', { method: 'POST', headers: { ...json, 'Content-Encoding': 'deflate' }, body });
      expect(res.status).toBe(200);
    });

    it('accepts a JSON body without a Content-Type and with charset', async () => {
      expect((await request(url, '/test/echo', { method: 'POST', body: '{"name":"x"}' })).status).toBe(200);
      const res = await request(url, '/test/echo', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json; charset=UTF-8' },
        body: '{"name":"x"}',
      });
      expect(res.status).toBe(200);
    });

    it('a corrupt gzip stream is a 400', async () => {
      const res = await request(url, '/test/echo', {
        method: 'POST',
        headers: { ...json, 'Content-Encoding': 'gzip' },
        body: Buffer.from('this is not gzip at all'),
      });
      expect(res.status).toBe(400);
      expect(res.json()).toMatchObject({ detail: 'Malformed compressed body' });
    });
  });

  describe('request ids', () => {
    it('echoes a sane X-Request-Id and logs every line of the request with it', async () => {
      const res = await request(url, '/api/v1/unknown', { headers: { 'X-Request-Id': 'client-abc.123' } });
      expect(res.headers['x-request-id']).toBe('client-abc.123');
      const lines = logs.lines().filter((l) => l['reqId'] === 'client-abc.123');
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.some((l) => l['msg'] === 'request' && l['status'] === 404)).toBe(true);
    });

    it('keeps no e-mail address in the access log, typed or percent-encoded', async () => {
      await request(url, '/api/v1/user/Alice%40example.org', { headers: { 'X-Request-Id': 'mail-1' } });
      await request(url, '/api/v1/unknown/bob@example.org/x', { headers: { 'X-Request-Id': 'mail-2' } });
      const lines = logs.lines().filter((l) => l['msg'] === 'request' && (l['reqId'] === 'mail-1' || l['reqId'] === 'mail-2'));
      expect(lines.map((l) => l['path'])).toEqual(['/api/v1/user/{email}', '/api/v1/unknown/{email}/x']);
      expect(JSON.stringify(logs.lines())).not.toMatch(/alice|bob@/i);
    });

    it('replaces an insane one with a UUID', async () => {
      const res = await request(url, '/ping', { headers: { 'X-Request-Id': 'x'.repeat(300) } });
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const spaced = await request(url, '/ping', { headers: { 'X-Request-Id': 'a b <script>' } });
      expect(spaced.headers['x-request-id']).not.toContain(' ');
    });

    it('makes one when none is given', async () => {
      const res = await request(url, '/ping');
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    });
  });

  describe('responses', () => {
    it('are gzip-compressed when the client asks', async () => {
      const res = await request(url, '/swagger.json', { headers: { 'Accept-Encoding': 'gzip, deflate' } });
      expect(res.status).toBe(200);
      expect(res.headers['content-encoding']).toBe('gzip');
      expect(res.headers['vary']).toMatch(/Accept-Encoding/);
      expect(JSON.parse(zlib.gunzipSync(res.body).toString()).openapi).toBe('3.1.0');
    });

    it('are not compressed without Accept-Encoding or with gzip;q=0', async () => {
      expect((await request(url, '/swagger.json')).headers['content-encoding']).toBeUndefined();
      const refused = await request(url, '/swagger.json', { headers: { 'Accept-Encoding': 'gzip;q=0, identity' } });
      expect(refused.headers['content-encoding']).toBeUndefined();
      expect(refused.json().openapi).toBe('3.1.0');
    });

    it('are never compressed on a route that opts out (raw downloads)', async () => {
      const res = await request(url, '/test/download', { headers: { 'Accept-Encoding': 'gzip' } });
      expect(res.status).toBe(200);
      expect(res.headers['content-encoding']).toBeUndefined();
      expect(res.body.length).toBe(64 * 1024);
    });

    it('carry security headers and no x-powered-by', async () => {
      const res = await request(url, '/ping');
      expect(res.headers['x-powered-by']).toBeUndefined();
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    });

    it('answer HEAD like GET without a body', async () => {
      const res = await request(url, '/ping', { method: 'HEAD' });
      expect(res.status).toBe(200);
      expect(res.body.length).toBe(0);
    });
  });

  describe('routing', () => {
    it('tries a fixed segment before a parameter, whatever the declaration order', async () => {
      expect((await request(url, '/test/items/special')).json()).toEqual({ data: 'special' });
      expect((await request(url, '/test/items/other/')).json()).toEqual({ data: 'item other' });
    });

    it('accepts a trailing slash everywhere', async () => {
      for (const path of ['/ping/', '/api-health/', '/swagger.json/', '/api/docs/', '/metrics/']) {
        expect([200, 503]).toContain((await request(url, path)).status);
      }
      expect((await request(url, '/test/echo/', { method: 'POST', headers: json, body: '{"name":"x"}' })).status).toBe(200);
    });
  });

  describe('CORS', () => {
    it('allows a listed origin', async () => {
      const res = await request(url, '/ping', { headers: { Origin: 'https://app.example.org' } });
      expect(res.headers['access-control-allow-origin']).toBe('https://app.example.org');
      expect(res.headers['access-control-expose-headers']).toContain('X-Request-Id');
    });

    it('answers a preflight from a listed origin', async () => {
      const res = await request(url, '/test/echo', {
        method: 'OPTIONS',
        headers: { Origin: 'https://other.example.org', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
      });
      expect(res.status).toBe(204);
      expect(res.headers['access-control-allow-origin']).toBe('https://other.example.org');
      expect(res.headers['access-control-allow-methods']).toContain('POST');
    });

    it('gives nothing to an origin not listed (no wildcard)', async () => {
      const res = await request(url, '/ping', { headers: { Origin: 'https://evil.example.com' } });
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
    });
  });

  describe('docs and metrics', () => {
    it('serves the interactive docs from local assets', async () => {
      const page = await request(url, '/api/docs');
      expect(page.status).toBe(200);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(page.text).not.toMatch(/https?:\/\//);
      const scripts = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
      expect(scripts.length).toBeGreaterThan(3);
      for (const asset of scripts) {
        const res = await request(url, asset);
        expect(res.status).toBe(200);
        expect(res.body.length).toBeGreaterThan(0);
      }
      const init = await request(url, '/api/docs/swagger-initializer.js');
      expect(init.text).toContain('"/swagger.json"');
      // Kept by shared caches an hour: the answer names what it depends on, the CORS origin too.
      const cross = await request(url, '/api/docs/swagger-initializer.js', { headers: { Origin: 'https://app.example.org' } });
      expect(cross.headers['access-control-allow-origin']).toBe('https://app.example.org');
      expect(String(cross.headers['vary']).split(/\s*,\s*/)).toEqual(expect.arrayContaining(['Origin', 'Accept-Encoding']));
    });

    it('serves no file outside its list', async () => {
      for (const path of ['/api/docs/package.json', '/api/docs/..%2Fpackage.json', '/api/docs/swagger-ui-bundle.js.map']) {
        expect((await request(url, path)).status).toBe(404);
      }
    });

    it('exposes Prometheus metrics with the request histogram by route template', async () => {
      await request(url, '/test/items/abc');
      await request(url, '/no/such/route/12345');
      const res = await request(url, '/metrics');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      expect(res.text).toContain('process_cpu_user_seconds_total');
      expect(res.text).toMatch(/gef_http_request_duration_seconds_count\{[^}]*method="GET",route="\/test\/items\/\{item\}",status="200"\}/);
      expect(res.text).toMatch(/route="unmatched",status="404"/);
      expect(res.text).not.toContain('/no/such/route');
    });
  });
});

describe('slow clients', () => {
  it('cannot hold a connection by sending headers slowly', async () => {
    const gateway = await startGateway({}, { timeouts: { headersTimeoutMs: 300, requestTimeoutMs: 600, checkIntervalMs: 100 } });
    try {
      const started = Date.now();
      const answer = await new Promise<string>((resolve) => {
        const socket = net.connect(gateway.port, '127.0.0.1', () => socket.write('GET /ping HTTP/1.1\r\nHost: x\r\n'));
        let text = '';
        socket.on('data', (c: Buffer) => (text += c.toString()));
        socket.on('close', () => resolve(text));
      });
      expect(Date.now() - started).toBeLessThan(3000);
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(JSON.parse(answer.split('\r\n\r\n')[1]!)).toMatchObject({ status: 408, error: 'request_timeout' });
    } finally {
      await gateway.close();
    }
  });

  it('cannot hold a connection by trickling a body: the request is answered 408 and closed', async () => {
    const gateway = await startGateway({}, { timeouts: { headersTimeoutMs: 300, requestTimeoutMs: 600, checkIntervalMs: 100 } });
    try {
      const started = Date.now();
      const answer = await new Promise<string>((resolve) => {
        const socket = net.connect(gateway.port, '127.0.0.1', () =>
          socket.write('POST /auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"email":"'),
        );
        const timer = setInterval(() => socket.writable && socket.write('a'), 50);
        let text = '';
        socket.on('data', (c: Buffer) => (text += c.toString()));
        socket.on('error', () => undefined);
        socket.on('close', () => {
          clearInterval(timer);
          resolve(text);
        });
      });
      expect(Date.now() - started).toBeLessThan(3000);
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(JSON.parse(answer.split('\r\n\r\n')[1]!)).toMatchObject({ status: 408, error: 'request_timeout' });
    } finally {
      await gateway.close();
    }
  });

  it('has sane timeouts by default', async () => {
    const gateway = await startGateway();
    try {
      expect(gateway.server.headersTimeout).toBeGreaterThan(0);
      expect(gateway.server.headersTimeout).toBeLessThanOrEqual(60_000);
      expect(gateway.server.requestTimeout).toBeGreaterThan(gateway.server.headersTimeout);
      expect(gateway.server.keepAliveTimeout).toBeGreaterThan(0);
    } finally {
      await gateway.close();
    }
  });
});
