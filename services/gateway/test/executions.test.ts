/**
 * The execution routes against a fake execution service: what each route asks the service,
 * and the REST shape of what it answers. The real behaviour is in test/e2e.
 */
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { create, fromJson, type JsonObject, type JsonValue } from '@bufbuild/protobuf';
import { timestampFromDate, ValueSchema } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { maxJsonValueDepth } from '@gef/common';
import { signExecutionToken } from '@gef/common/execution-token';
import { execution } from '@gef/protos';
import { executionId, fakeExecution, ownerId, quietCancelledCalls, startSigningKeycloak, until, type SigningKeycloak } from './scripts-fakes';
import { request, startFakeService, startGateway, type FakeService, type RunningGateway } from './support';
import { progressJson } from '../src/routes/executions';

type ExecutionImpl = Partial<ServiceImpl<typeof execution.ExecutionService>>;

const secret = 'gateway-test-execution-secret';
const adminId = '6f1d4c3e-8a55-4f0a-9c55-2b7e5a4a9d10';

let handlers: ExecutionImpl = {};
let gateway: RunningGateway;
let keycloak: SigningKeycloak;
let fake: { url: string; stop(): Promise<void> };
let others: FakeService[];
let token: string;
let adminToken: string;

async function startExecutionFake(): Promise<{ url: string; stop(): Promise<void> }> {
  const delegate = Object.fromEntries(
    Object.keys(execution.ExecutionService.method).map((name) => [
      name,
      (...args: unknown[]) => {
        const fn = (handlers as Record<string, unknown>)[name];
        if (typeof fn !== 'function') throw new Error(`the fake has no ${name}`);
        return (fn as (...a: unknown[]) => unknown)(...args);
      },
    ]),
  );
  const server = http2.createServer(connectNodeAdapter({ routes: (router) => router.service(execution.ExecutionService, delegate as ExecutionImpl) }));
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: async () => {
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

beforeAll(async () => {
  quietCancelledCalls();
  [keycloak, fake] = await Promise.all([startSigningKeycloak(), startExecutionFake()]);
  others = await Promise.all([startFakeService('user'), startFakeService('script')]);
  gateway = await startGateway({
    USER_SERVICE_URL: others[0]!.url,
    SCRIPT_SERVICE_URL: others[1]!.url,
    EXECUTION_SERVICE_URL: fake.url,
    KEYCLOAK_URL: keycloak.url,
    EXECUTION_TOKEN_SECRET: secret,
  });
  token = await keycloak.token(ownerId);
  adminToken = await keycloak.token(adminId, 'ADMIN');
});
afterAll(async () => {
  await gateway.close();
  await Promise.all([fake.stop(), keycloak.stop(), ...others.map((s) => s.stop())]);
});
beforeEach(() => {
  handlers = {};
});

const json = (t: string, method: string, body: unknown, path: string) =>
  request(gateway.url, path, { method, headers: { Authorization: `Bearer ${t}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

describe('POST /api/v1/script/{script}/run', () => {
  it('merges the query string with the body (the body wins) and drops token', async () => {
    let seen: execution.RunScriptRequest | undefined;
    handlers.runScript = (req) => {
      seen = req;
      return create(execution.RunScriptResponseSchema, { execution: fakeExecution({ status: execution.ExecutionStatus.PENDING, progress: 0, paramsJson: req.paramsJson }) });
    };
    const res = await json(token, 'POST', { b: 2, c: [1], token: 'x' }, '/api/v1/script/my-script/run?a=1&b=q&token=secret');
    expect(res.status).toBe(200);
    expect(seen?.idOrSlug).toBe('my-script');
    // As JSON text (the service answers with text too), never as a message per value.
    expect(seen?.jsonText).toBe(true);
    expect(seen?.params).toBeUndefined();
    expect(JSON.parse(seen!.paramsJson)).toEqual({ a: '1', b: 2, c: [1] });
    expect(seen?.caller?.userId).toBe(ownerId);
    expect(res.json().data).toMatchObject({ status: 'PENDING', progress: 0, params: { a: '1', b: 2, c: [1] }, results: null, end_date: null, start_date: '2026-11-28T05:13:18.123000' });
    expect(res.json().data).not.toHaveProperty('workflow_id');
  });

  it('takes the first value of a query name given more than once, as older servers did', async () => {
    let seen: execution.RunScriptRequest | undefined;
    handlers.runScript = (req) => {
      seen = req;
      return create(execution.RunScriptResponseSchema, { execution: fakeExecution({ status: execution.ExecutionStatus.PENDING, progress: 0, paramsJson: req.paramsJson }) });
    };
    const res = await json(token, 'POST', {}, '/api/v1/script/my-script/run?a=1&a=2&b=x');
    expect(res.status).toBe(200);
    expect(JSON.parse(seen!.paramsJson)).toEqual({ a: '1', b: 'x' });
  });

  it.each([
    ['a NUL in a body value', { a: 'x\u0000' }, ''],
    ['a NUL in a body key', { nested: { 'a\u0000': 1 } }, ''],
    ['a NUL in a query value', {}, '?a=%00'],
    ['a NUL in a query name', {}, '?a%00=1'],
  ])('refuses params with %s (400), which no database could store', async (_name, body, query) => {
    handlers.runScript = () => {
      throw new Error('not called');
    };
    const res = await json(token, 'POST', body, `/api/v1/script/my-script/run${query}`);
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ status: 400, error: 'invalid_argument' });
    expect(res.json().detail).toMatch(/NUL character/);
  });

  it.each([['an array', [1]], ['a string', 'x'], ['null', null]])('refuses %s as the body (400)', async (_name, body) => {
    handlers.runScript = () => {
      throw new Error('not called');
    };
    const res = await json(token, 'POST', body, '/api/v1/script/my-script/run');
    expect(res.status).toBe(400);
    expect(res.json().detail).toMatch(/JSON object/);
  });
});

describe('GET /api/v1/execution/{execution}', () => {
  it('answers the REST shape; progress rounded; the workflow id for ADMIN only', async () => {
    handlers.getExecution = (req) => create(execution.GetExecutionResponseSchema, { execution: fakeExecution({ logs: req.includeLogs ? [] : [] }) });
    const asOwner = (await request(gateway.url, `/api/v1/execution/${executionId}`, { headers: { Authorization: `Bearer ${token}` } })).json().data;
    expect(asOwner).toMatchObject({ id: executionId, status: 'RUNNING', progress: 34, script_version: 2, attempt: 1, queued_at: null });
    expect(asOwner).not.toHaveProperty('workflow_id');
    const asAdmin = (await request(gateway.url, `/api/v1/execution/${executionId}?exclude=params,results`, { headers: { Authorization: `Bearer ${adminToken}` } })).json().data;
    expect(asAdmin.workflow_id).toBe(`execution-${executionId}`);
    expect(asAdmin).not.toHaveProperty('params');
    expect(asAdmin).not.toHaveProperty('results');
  });
});

describe('an execution service of an earlier version', () => {
  it('answers params and results as messages, which are read as well (upgrades and rollbacks in turn)', async () => {
    const id = '6b2d3f40-5c6e-4f70-9b8c-0d1e2f3a4b5c';
    const older = fakeExecution({ id, status: execution.ExecutionStatus.FINISHED, paramsJson: '', params: { area: 'kenya', years: [2001, 2020] }, results: fromJson(ValueSchema, { ok: true }) });
    handlers.getExecution = (req) => {
      expect(req.jsonText).toBe(true);
      return create(execution.GetExecutionResponseSchema, { execution: older });
    };
    handlers.listExecutions = () => create(execution.ListExecutionsResponseSchema, { executions: [older], page: 1, perPage: 20, total: 1n });
    const got = await request(gateway.url, `/api/v1/execution/${id}`, { headers: { Authorization: `Bearer ${token}` } });
    expect(got.json().data).toMatchObject({ id, params: { area: 'kenya', years: [2001, 2020] }, results: { ok: true } });
    const listed = await request(gateway.url, '/api/v1/execution/user?per_page=20&sort=id', { headers: { Authorization: `Bearer ${token}` } });
    expect(listed.json().data).toEqual([expect.objectContaining({ id, params: { area: 'kenya', years: [2001, 2020] }, results: { ok: true } })]);
    const downloaded = await request(gateway.url, `/api/v1/execution/${id}/download-results`, { headers: { Authorization: `Bearer ${token}` } });
    expect(downloaded.json()).toEqual({ ok: true });
  });
});

describe('progress as the REST API shows it', () => {
  it('is a whole number 0–100, rounded, and 100 only when it is', () => {
    expect([0, 0.4, 0.5, 33.6, 49.5, 98.5, 99.4, 99.5, 99.99, 100].map(progressJson)).toEqual([0, 0, 1, 34, 50, 99, 99, 99, 99, 100]);
    expect([-1, 101, Number.NaN, Number.POSITIVE_INFINITY].map(progressJson)).toEqual([0, 100, 0, 0]);
  });
});

describe('PATCH and POST log with an execution token', () => {
  it('passes the raw token instead of a caller, and WARN as WARNING', async () => {
    const apiToken = await signExecutionToken(secret, { executionId, scope: 'execution', attempt: 1, ttlSeconds: 60 });
    let update: execution.UpdateExecutionRequest | undefined;
    let append: execution.AppendExecutionLogsRequest | undefined;
    handlers.updateExecution = (req) => {
      update = req;
      return create(execution.UpdateExecutionResponseSchema, { execution: fakeExecution({ progress: req.progress ?? 0 }), changed: true });
    };
    handlers.appendExecutionLogs = (req) => {
      append = req;
      return create(execution.AppendExecutionLogsResponseSchema, {
        appended: 1,
        logs: [{ id: 7n, text: req.lines[0]!.text, level: req.lines[0]!.level, executionId, attempt: 1, registerDate: timestampFromDate(new Date('2026-11-28T05:13:20Z')) }],
      });
    };
    const patched = await json(apiToken, 'PATCH', { progress: 12.5, results: null }, `/api/v1/execution/${executionId}`);
    expect(patched.status).toBe(200);
    expect(update).toMatchObject({ id: executionId, executionToken: apiToken, progress: 12.5 });
    expect(update?.caller).toBeUndefined();
    expect(update).toMatchObject({ resultsJson: 'null', jsonText: true });
    expect(update?.results).toBeUndefined();
    const logged = await json(apiToken, 'POST', { text: 'careful', level: 'warn' }, `/api/v1/execution/${executionId}/log`);
    expect(logged.status).toBe(200);
    expect(append?.lines[0]).toMatchObject({ text: 'careful', level: execution.LogLevel.WARNING });
    expect(append?.executionToken).toBe(apiToken);
    expect(logged.json().data).toEqual({ id: 7, text: 'careful', level: 'WARNING', register_date: '2026-11-28T05:13:20.000000', execution_id: executionId, attempt: 1 });
  });

  it('refuses runner tokens, tokens of another signer, and execution tokens on other routes', async () => {
    handlers.updateExecution = () => {
      throw new Error('not called');
    };
    const runnerToken = await signExecutionToken(secret, { executionId, scope: 'runner', attempt: 1, ttlSeconds: 60 });
    const forged = await signExecutionToken('another-secret-of-16-chars', { executionId, scope: 'execution', attempt: 1, ttlSeconds: 60 });
    for (const t of [runnerToken, forged]) {
      const res = await json(t, 'PATCH', { progress: 1 }, `/api/v1/execution/${executionId}`);
      expect(res.status).toBe(401);
      expect(res.json().error).toBe('invalid_token');
    }
    const apiToken = await signExecutionToken(secret, { executionId, scope: 'execution', attempt: 1, ttlSeconds: 60 });
    expect((await request(gateway.url, `/api/v1/execution/${executionId}`, { headers: { Authorization: `Bearer ${apiToken}` } })).status).toBe(401);
  });

  it('needs one of status, progress, results', async () => {
    const res = await json(adminToken, 'PATCH', { other: 1 }, `/api/v1/execution/${executionId}`);
    expect(res.status).toBe(400);
  });
});

describe('GET /api/v1/execution/{execution}/events', () => {
  it('streams the watch as Server-Sent Events from Last-Event-ID, and ends the call when the client leaves', async () => {
    let seen: execution.WatchExecutionRequest | undefined;
    let ended = false;
    handlers.watchExecution = async function* (req, ctx) {
      seen = req;
      try {
        yield create(execution.WatchExecutionResponseSchema, {
          event: { case: 'status', value: { status: execution.ExecutionStatus.RUNNING, execution: fakeExecution() } },
          lastLogId: 41n,
        });
        yield create(execution.WatchExecutionResponseSchema, {
          event: { case: 'log', value: { id: 42n, text: 'hello', level: execution.LogLevel.INFO, executionId, attempt: 1 } },
          lastLogId: 42n,
        });
        yield create(execution.WatchExecutionResponseSchema, { event: { case: 'progress', value: { progress: 49.6 } }, lastLogId: 42n });
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
      } finally {
        ended = true;
      }
    };
    const url = new URL(gateway.url);
    const received: string[] = [];
    const req = http.get({ host: url.hostname, port: url.port, path: `/api/v1/execution/${executionId}/events`, headers: { Authorization: `Bearer ${token}`, 'Last-Event-ID': '41' }, agent: false });
    const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    res.setEncoding('utf8');
    res.on('data', (c: string) => received.push(c));
    await until(() => received.join('').includes('event: progress'), 5000, 'the progress event');
    expect(seen?.afterLogId).toBe(41n);
    const text = received.join('');
    expect(text).toContain('id: 41\nevent: status\ndata: {"status":"RUNNING"');
    expect(text).toContain('id: 42\nevent: log\ndata: {"id":42,"text":"hello","level":"INFO"');
    expect(text).toContain('id: 42\nevent: progress\ndata: {"progress":50}');
    req.destroy();
    await until(() => ended, 5000, 'the watch call to end');
  });

  it.each([
    ['lastEventId=7&_=1733000000000', 7n],
    ['last-id=9&lastEventId=7', 9n],
  ])('resumes from an event-source polyfill’s query (%s)', async (query, expected) => {
    let seen: execution.WatchExecutionRequest | undefined;
    handlers.watchExecution = async function* (req) {
      seen = req;
      yield* [];
      throw new (await import('@connectrpc/connect')).ConnectError('Execution not found', 5);
    };
    const res = await request(gateway.url, `/api/v1/execution/${executionId}/events?${query}`, { headers: { Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(404);
    expect(seen?.afterLogId).toBe(expected);
    const bad = await request(gateway.url, `/api/v1/execution/${executionId}/events?lastEventId=x`, { headers: { Authorization: `Bearer ${token}` } });
    expect(bad.status).toBe(400);
    expect(bad.json().detail).toBe("Query parameter 'lastEventId' must be a non-negative integer");
  });

  it('answers errors before the stream as JSON', async () => {
    handlers.watchExecution = async function* () {
      yield* [];
      throw new (await import('@connectrpc/connect')).ConnectError('Execution not found', 5);
    };
    const res = await request(gateway.url, `/api/v1/execution/${executionId}/events`, { headers: { Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(404);
    expect(res.json()).toMatchObject({ status: 404, error: 'not_found' });
    const bad = await request(gateway.url, `/api/v1/execution/${executionId}/events`, { headers: { Authorization: `Bearer ${token}`, 'Last-Event-ID': 'x' } });
    expect(bad.status).toBe(400);
  });
});

describe('open event streams per user', () => {
  let capped: RunningGateway;
  const otherId = '9a7c3f10-5b2e-4d8a-b6f1-3c2d1e0f9a8b';
  const open: http.ClientRequest[] = [];
  let watching = 0;

  beforeAll(async () => {
    capped = await startGateway({
      USER_SERVICE_URL: others[0]!.url,
      SCRIPT_SERVICE_URL: others[1]!.url,
      EXECUTION_SERVICE_URL: fake.url,
      KEYCLOAK_URL: keycloak.url,
      EXECUTION_TOKEN_SECRET: secret,
      EVENT_STREAMS_PER_USER: '2',
      EVENT_STREAMS_PER_ADMIN: '3',
    });
  });
  afterAll(async () => {
    for (const req of open) req.destroy();
    await capped.close();
  });
  beforeEach(() => {
    // A run that goes on until its stream's client leaves.
    handlers.watchExecution = async function* (_req, ctx) {
      watching++;
      try {
        yield create(execution.WatchExecutionResponseSchema, { event: { case: 'status', value: { status: execution.ExecutionStatus.RUNNING, execution: fakeExecution() } } });
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
      } finally {
        watching--;
      }
    };
  });

  /** Opens a stream; its status (200 streams on, anything else was answered whole) and body. */
  async function stream(t: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: () => Promise<string>; req: http.ClientRequest }> {
    const url = new URL(capped.url);
    const req = http.get({ host: url.hostname, port: url.port, path: `/api/v1/execution/${executionId}/events`, headers: { Authorization: `Bearer ${t}` }, agent: false });
    open.push(req);
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => req.on('response', resolve).on('error', reject));
    res.setEncoding('utf8');
    let text = '';
    res.on('data', (c: string) => (text += c));
    const ended = new Promise<string>((resolve) => res.on('end', () => resolve(text)));
    return { status: res.statusCode ?? 0, headers: res.headers, body: () => ended, req };
  }

  it('refuses a user more than EVENT_STREAMS_PER_USER open streams (429 rate_limited, Retry-After), and takes one again once a stream ends', async () => {
    const otherToken = await keycloak.token(otherId);
    const first = await stream(token);
    const second = await stream(token);
    expect([first.status, second.status]).toEqual([200, 200]);
    const refused = await stream(token);
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toMatch(/^\d+$/);
    const body = JSON.parse(await refused.body());
    expect(body).toMatchObject({ status: 429, error: 'rate_limited', retry_after: Number(refused.headers['retry-after']) });
    expect(body.detail).toMatch(/event streams/);
    // Another user is not held back by this one.
    expect((await stream(otherToken)).status).toBe(200);
    await until(() => watching === 3, 5000, 'three watches');
    // The client leaves: its slot is free again.
    first.req.destroy();
    await until(() => watching === 2, 5000, 'the watch to end');
    expect((await stream(token)).status).toBe(200);
    expect((await stream(token)).status).toBe(429);
    for (const req of open.splice(0)) req.destroy();
    await until(() => watching === 0, 5000, 'every watch to end');
  });

  it('gives ADMIN and above EVENT_STREAMS_PER_ADMIN, and frees the slot of a stream refused before its first event', async () => {
    for (let i = 0; i < 3; i++) expect((await stream(adminToken)).status).toBe(200);
    expect((await stream(adminToken)).status).toBe(429);
    for (const req of open.splice(0)) req.destroy();
    await until(() => watching === 0, 5000, 'every watch to end');
    handlers.watchExecution = async function* () {
      yield* [];
      throw new ConnectError('Execution not found', Code.NotFound);
    };
    for (let i = 0; i < 4; i++) expect((await stream(token)).status).toBe(404);
  });
});

describe('params and results nested deep', () => {
  /** JSON nested `levels` deep, objects and arrays in turn (a scalar is 0 levels). */
  function nested(levels: number): JsonValue {
    let v: JsonValue = 'leaf';
    for (let i = 0; i < levels; i++) v = i % 2 ? [v] : { k: v };
    return v;
  }
  const nestedObject = (levels: number): JsonObject => ({ k: nested(levels - 1) });
  const notCalled = () => {
    throw new Error('not called');
  };

  it(`passes run params nested ${maxJsonValueDepth + 1} levels on (the service refuses them) and refuses deeper bodies (400)`, async () => {
    let seen: execution.RunScriptRequest | undefined;
    handlers.runScript = (req) => {
      seen = req;
      throw new ConnectError(`params are nested deeper than ${maxJsonValueDepth} levels of objects and arrays`, Code.InvalidArgument);
    };
    const passed = await json(token, 'POST', nestedObject(maxJsonValueDepth + 1), '/api/v1/script/my-script/run');
    expect(JSON.parse(seen!.paramsJson)).toEqual(nestedObject(maxJsonValueDepth + 1));
    expect(passed.status).toBe(400);
    expect(passed.json().detail).toBe(`params are nested deeper than ${maxJsonValueDepth} levels of objects and arrays`);
    handlers.runScript = notCalled;
    for (const levels of [maxJsonValueDepth + 2, 55]) {
      const res = await json(token, 'POST', nestedObject(levels), '/api/v1/script/my-script/run');
      expect(res.status).toBe(400);
      expect(res.json()).toMatchObject({ status: 400, error: 'invalid_argument' });
      expect(res.json().detail).toBe(`JSON body is nested deeper than ${maxJsonValueDepth + 1} levels of objects and arrays (run params and results may nest at most ${maxJsonValueDepth})`);
    }
  });

  it(`passes PATCH results nested ${maxJsonValueDepth} levels on and refuses deeper ones (400)`, async () => {
    let seen: execution.UpdateExecutionRequest | undefined;
    handlers.updateExecution = (req) => {
      seen = req;
      return create(execution.UpdateExecutionResponseSchema, { execution: fakeExecution({ resultsJson: req.resultsJson }), changed: true });
    };
    const ok = await json(adminToken, 'PATCH', { results: nested(maxJsonValueDepth) }, `/api/v1/execution/${executionId}`);
    expect(ok.status).toBe(200);
    expect(JSON.parse(seen!.resultsJson!)).toEqual(nested(maxJsonValueDepth));
    expect(ok.json().data.results).toEqual(nested(maxJsonValueDepth));
    handlers.updateExecution = notCalled;
    for (const levels of [maxJsonValueDepth + 1, 55]) {
      const res = await json(adminToken, 'PATCH', { results: nested(levels) }, `/api/v1/execution/${executionId}`);
      expect(res.status).toBe(400);
      expect(res.json().detail).toMatch(/^JSON body is nested deeper than/);
    }
  });

  it('reads and lists executions whose stored params and results are nested 64 levels (stored before the limit)', async () => {
    const id = '5a1c2e3f-4b5d-4e6f-8a7b-9c0d1e2f3a4b';
    const deep = fakeExecution({ id, status: execution.ExecutionStatus.FINISHED, paramsJson: JSON.stringify(nestedObject(64)), resultsJson: JSON.stringify(nested(64)) });
    handlers.getExecution = () => create(execution.GetExecutionResponseSchema, { execution: deep });
    handlers.listExecutions = () => create(execution.ListExecutionsResponseSchema, { executions: [deep], page: 1, perPage: 7, total: 1n });
    const got = await request(gateway.url, `/api/v1/execution/${id}`, { headers: { Authorization: `Bearer ${token}` } });
    expect(got.status).toBe(200);
    expect(got.json().data).toMatchObject({ id, params: nestedObject(64), results: nested(64) });
    const downloaded = await request(gateway.url, `/api/v1/execution/${id}/download-results`, { headers: { Authorization: `Bearer ${token}` } });
    expect(downloaded.status).toBe(200);
    expect(downloaded.json()).toEqual(nested(64));
    for (const [path, t] of [
      ['/api/v1/execution/user?per_page=7', token],
      ['/api/v1/execution?per_page=7', adminToken],
    ] as const) {
      const listed = await request(gateway.url, path, { headers: { Authorization: `Bearer ${t}` } });
      expect(listed.status).toBe(200);
      expect(listed.json().data).toEqual([expect.objectContaining({ id, params: nestedObject(64), results: nested(64) })]);
    }
  });
});

describe('list parameters given more than once', () => {
  it('joins comma-list parameters (include, exclude, status) as one list, and still refuses a repeated scalar', async () => {
    let seen: execution.ListExecutionsRequest | undefined;
    handlers.listExecutions = (req) => {
      seen = req;
      return create(execution.ListExecutionsResponseSchema, { executions: [], page: 1, perPage: 20, total: 0n });
    };
    const res = await request(gateway.url, '/api/v1/execution/user?status=RUNNING&status=FINISHED&exclude=params&exclude=results&page=1', { headers: { Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(seen?.status).toBe('RUNNING,FINISHED');
    expect(seen).toMatchObject({ excludeParams: true, excludeResults: true });
    const twice = await request(gateway.url, '/api/v1/execution/user?page=1&page=2', { headers: { Authorization: `Bearer ${token}` } });
    expect(twice.status).toBe(400);
    expect(twice.json().detail).toBe("Query parameter 'page' must be given once, as text");
  });
});
