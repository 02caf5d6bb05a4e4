/**
 * Whole answers of hot reads given again before the Express app (`AnswerCache`): exactly
 * what the routes would answer, to exactly the requests they would answer it to, and never
 * once what they were made from changed or their token stopped holding. The gateway runs
 * with its real middlewares and token checks, in front of fake services; the change
 * streams and revocations are stand-ins the tests drive.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import express from 'express';
import pino from 'pino';
import client from 'prom-client';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { execution, script, user } from '@gef/protos';
import type { Principal } from '../src/auth/authenticator';
import type { RevocationCache } from '../src/auth/revocation-cache';
import { AnswerCache, answerSource } from '../src/cache/answer-cache';
import { ReadCache } from '../src/cache/read-cache';
import { RequestTiming } from '../src/http-metrics';
import type { ExecutionChanges } from '../src/streams/execution-changes';
import { executionId, fakeExecution, ownerId, otherId, quietCancelledCalls, startScriptStack, type ScriptStack } from './scripts-fakes';
import { memoryLogger, rawRequest, request, type TestResponse } from './support';

const path = `/api/v1/execution/${executionId}`;

/** Change streams the test drives: connected, and each change announced by hand. */
function changes() {
  const listeners: ((id: string | undefined) => void)[] = [];
  const owners: ((id: string | undefined) => void)[] = [];
  const fake = {
    isConnected: true,
    onChange: (listener: (id: string | undefined) => void) => {
      listeners.push(listener);
      return () => undefined;
    },
    onOwnerChange: (listener: (id: string | undefined) => void) => {
      owners.push(listener);
      return () => undefined;
    },
  };
  return {
    stream: fake as unknown as ExecutionChanges,
    changed: (id: string | undefined) => listeners.forEach((l) => l(id)),
    ownerChanged: (id: string) => owners.forEach((l) => l(id)),
  };
}

/** Revocations the test drives: the revoked users, and whether they are followed at all. */
function revocations() {
  const state = { revoked: new Set<string>(), trustworthy: true };
  const listeners: ((id: string | undefined) => void)[] = [];
  const fake = {
    get isConnected() {
      return state.trustworthy;
    },
    get trustworthy() {
      return state.trustworthy;
    },
    isRevoked: (userId: string) => state.revoked.has(userId),
    onUserChange: (listener: (id: string | undefined) => void) => {
      listeners.push(listener);
      return () => undefined;
    },
  };
  return { cache: fake as unknown as RevocationCache, state, changed: (id: string) => listeners.forEach((l) => l(id)) };
}

let stack: ScriptStack;
let executionChanges: ReturnType<typeof changes>;
let revoked: ReturnType<typeof revocations>;
let logs: ReturnType<typeof memoryLogger>;
let token: string;
let otherToken: string;
let adminToken: string;
/** What the fake execution service answers, and how often it was asked. */
let current: MessageInitShape<typeof execution.ExecutionSchema>;
let reads = 0;
let profileReads = 0;

beforeAll(async () => {
  quietCancelledCalls();
  executionChanges = changes();
  revoked = revocations();
  logs = memoryLogger();
  stack = await startScriptStack(
    { CORS_ORIGINS: 'https://app.example.org', LOG_LEVEL: 'info' },
    { executionChanges: executionChanges.stream, revocations: revoked.cache, logger: logs.logger },
  );
  stack.handlers.execution.getExecution = (req) => {
    reads++;
    const found = fakeExecution(current);
    if (req.caller?.userId !== found.userId && req.caller?.role !== user.Role.ADMIN) return create(execution.GetExecutionResponseSchema, {});
    return create(execution.GetExecutionResponseSchema, { execution: found });
  };
  stack.handlers.user.getUser = (req) => {
    profileReads++;
    return create(user.GetUserResponseSchema, { user: { id: req.caller?.userId ?? '', email: 'ana@example.org', name: 'Ana', country: 'KE', institution: 'CI', role: user.Role.USER } });
  };
  [token, otherToken, adminToken] = await Promise.all([stack.keycloak.token(ownerId), stack.keycloak.token(otherId), stack.keycloak.token('7c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5', 'ADMIN')]);
});
afterAll(() => stack.stop());
beforeEach(() => {
  // A fresh execution each test: its change drops what earlier tests left.
  current = { progress: 40 };
  executionChanges.changed(executionId);
  revoked.state.revoked.clear();
  revoked.state.trustworthy = true;
  reads = 0;
  profileReads = 0;
});

const get = (headers: Record<string, string>, at = path, method = 'GET') => request(stack.gateway.url, at, { method, headers });
const read = (t = token, headers: Record<string, string> = {}, at = path) => get({ Authorization: `Bearer ${t}`, ...headers }, at);

/** How many answers were given from memory so far. */
async function served(): Promise<number> {
  const text = (await get({}, '/metrics')).text;
  return Number(/gef_gateway_cache_lookups_total\{[^}]*cache="answer",result="hit"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
}

/** The headers of an answer that must be the same from memory as from the route (all but the request id and the time). */
function comparable(res: TestResponse): Record<string, unknown> {
  const { date: _date, 'x-request-id': _id, ...rest } = res.headers;
  return rest;
}

describe('answers from memory', () => {
  it('gives a repeated read the route’s very answer without asking the service again', async () => {
    const before = await served();
    const first = await read();
    const second = await read();
    const third = await read(token, { 'X-Request-Id': 'poll-3' });
    expect(first.status).toBe(200);
    expect(reads).toBe(1);
    expect((await served()) - before).toBe(2);
    for (const again of [second, third]) {
      expect(again.status).toBe(200);
      expect(again.body.equals(first.body)).toBe(true);
      expect(comparable(again)).toEqual(comparable(first));
    }
    // The request id stays each request's own.
    expect(third.headers['x-request-id']).toBe('poll-3');
    expect(second.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(second.headers['x-request-id']).not.toBe(first.headers['x-request-id']);
    // Counted and logged as any other request of its route.
    const line = logs.lines().find((l) => l['msg'] === 'request' && l['reqId'] === 'poll-3');
    expect(line).toMatchObject({ route: '/api/v1/execution/{execution}', path, status: 200, method: 'GET' });
  });

  it('shows a change on the very next read', async () => {
    await read();
    await read();
    current = { progress: 80, status: execution.ExecutionStatus.FINISHED };
    executionChanges.changed(executionId);
    const after = await read();
    expect(after.json().data).toMatchObject({ progress: 80, status: 'FINISHED' });
    expect(reads).toBe(2);
    expect((await read()).json().data.progress).toBe(80);
    expect(reads).toBe(2);
  });

  it('keeps each caller’s answer their own', async () => {
    expect((await read()).status).toBe(200);
    const other = await read(otherToken);
    expect(other.status).toBe(404);
    const admin = await read(adminToken);
    expect(admin.json().data.workflow_id).toBe(`execution-${executionId}`);
    expect((await read()).json().data.workflow_id).toBeUndefined();
    expect((await read(otherToken)).status).toBe(404);
  });

  it('keeps apart answers that differ by the headers they vary by (the QGIS plugin, CORS)', async () => {
    const before = await served();
    const plain = await read();
    const qgis = await read(token, { 'User-Agent': 'QGIS/3.34.0' });
    const marked = await read(token, { 'X-TE-Client': 'type=qgis_plugin; version=0.9' });
    const cors = await read(token, { Origin: 'https://app.example.org' });
    expect(await served()).toBe(before);
    expect(qgis.json().data).not.toHaveProperty('queued_at');
    expect(plain.json().data).toHaveProperty('queued_at');
    expect(marked.body.equals(qgis.body)).toBe(true);
    expect(cors.headers['access-control-allow-origin']).toBe('https://app.example.org');
    expect(plain.headers['access-control-allow-origin']).toBeUndefined();
    // Each again, from memory, as it was.
    const again = await Promise.all([read(), read(token, { 'User-Agent': 'QGIS/3.34.0' }), read(token, { Origin: 'https://app.example.org' })]);
    expect((await served()) - before).toBe(3);
    expect(again[0].body.equals(plain.body)).toBe(true);
    expect(again[1].body.equals(qgis.body)).toBe(true);
    expect(comparable(again[2])).toEqual(comparable(cors));
  });

  it('never serves a token that was revoked, or while revocations are not followed', async () => {
    await read();
    await read();
    revoked.state.revoked.add(ownerId);
    const refused = await read();
    expect(refused.status).toBe(401);
    expect(refused.json().error).toBe('token_revoked');
    revoked.state.revoked.clear();
    await read();
    revoked.state.trustworthy = false;
    expect((await read()).status).toBe(503);
  });

  it('leaves to the route what it might answer otherwise', async () => {
    const first = await read();
    const before = await served();
    // A conditional request gets its 304 from the route.
    const conditional = await read(token, { 'If-None-Match': String(first.headers.etag) });
    expect(conditional.status).toBe(304);
    // Another query is another answer.
    expect((await read(token, {}, `${path}?exclude=params`)).json().data).not.toHaveProperty('params');
    // A HEAD has no body.
    const head = await get({ Authorization: `Bearer ${token}` }, path, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    // Two Authorization headers: whose request it is would depend on who reads it.
    const twice = await rawRequest(stack.gateway.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nAuthorization: Bearer ${otherToken}\r\nConnection: close\r\n\r\n`);
    expect(twice).toMatch(/^HTTP\/1\.1 401/);
    // A body on a GET is the route's to read.
    const withBody = await request(stack.gateway.url, path, { headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'Content-Length': 2 }, body: '{}' });
    expect(withBody.status).toBe(200);
    expect(await served()).toBe(before);
    // And a plain read again is served.
    await read();
    expect((await served()) - before).toBe(1);
  });

  it('keeps big answers compressed for clients that take gzip, and plain for the others', async () => {
    current = { paramsJson: JSON.stringify({ text: 'x'.repeat(4000) }) };
    executionChanges.changed(executionId);
    const before = await served();
    const plain = await read();
    const zipped = await read(token, { 'Accept-Encoding': 'gzip, deflate' });
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(await served()).toBe(before);
    const zippedAgain = await read(token, { 'Accept-Encoding': 'gzip' });
    const plainAgain = await read(token, { 'Accept-Encoding': 'identity' });
    expect((await served()) - before).toBe(2);
    expect(reads).toBe(1);
    expect(zippedAgain.body.equals(zipped.body)).toBe(true);
    expect(comparable(zippedAgain)).toEqual(comparable(zipped));
    expect(gunzipSync(zippedAgain.body).equals(plain.body)).toBe(true);
    expect(plainAgain.body.equals(plain.body)).toBe(true);
    expect(comparable(plainAgain)).toEqual(comparable(plain));
    // A small answer is never compressed: one answer for both kinds of client.
    current = {};
    executionChanges.changed(executionId);
    const small = await read(token, { 'Accept-Encoding': 'gzip' });
    expect(small.headers['content-encoding']).toBeUndefined();
    const smallPlain = await read();
    expect(smallPlain.body.equals(small.body)).toBe(true);
    expect((await served()) - before).toBe(3);
  });

  it('answers GET /api/v1/user/me from memory until the profile changes', async () => {
    const before = await served();
    const first = await read(token, {}, '/api/v1/user/me');
    const second = await read(token, {}, '/api/v1/user/me');
    expect(profileReads).toBe(1);
    expect((await served()) - before).toBe(1);
    expect(second.body.equals(first.body)).toBe(true);
    expect(comparable(second)).toEqual(comparable(first));
    revoked.changed(ownerId);
    await read(token, {}, '/api/v1/user/me');
    expect(profileReads).toBe(2);
    expect((await served()) - before).toBe(1);
    // With its scripts: made from more than the profile, so never kept.
    let lists = 0;
    stack.handlers.script.listScripts = () => {
      lists++;
      return create(script.ListScriptsResponseSchema, {});
    };
    await read(token, {}, '/api/v1/user/me?include=scripts');
    await read(token, {}, '/api/v1/user/me?include=scripts');
    expect(lists).toBe(2);
  });

  it('answers an execution list from memory until an execution of its owner changes', async () => {
    let lists = 0;
    stack.handlers.execution.listExecutions = () => {
      lists++;
      return create(execution.ListExecutionsResponseSchema, { executions: [fakeExecution(current)], page: 1, perPage: 100, total: 1n });
    };
    const at = '/api/v1/execution/user?page=1&per_page=100';
    const before = await served();
    const first = await read(token, {}, at);
    const again = await read(token, {}, at);
    expect(lists).toBe(1);
    expect((await served()) - before).toBe(1);
    expect(again.body.equals(first.body)).toBe(true);
    expect(comparable(again)).toEqual(comparable(first));
    current = { progress: 90 };
    executionChanges.ownerChanged(ownerId);
    expect((await read(token, {}, at)).json().data[0].progress).toBe(90);
    expect(lists).toBe(2);
    // With logs: read afresh every time.
    await read(token, {}, `${at}&include=logs`);
    await read(token, {}, `${at}&include=logs`);
    expect(lists).toBe(4);
  });

  it('keeps nothing while changes are not followed', async () => {
    (executionChanges.stream as { isConnected: boolean }).isConnected = false;
    try {
      const before = await served();
      await read();
      await read();
      expect(reads).toBe(2);
      expect(await served()).toBe(before);
    } finally {
      (executionChanges.stream as { isConnected: boolean }).isConnected = true;
    }
  });
});

describe('the answers held', () => {
  /** A caller per `Authorization` value, its session named after it. */
  const principalOf = (authorization: string | undefined): Principal => ({ kind: 'user', userId: ownerId, role: 'USER', sessionId: authorization ?? '', issuedAt: 0, expiresAt: 0 });

  async function small(maxEntries: number, maxBytes: number, trusts: (p: Principal) => boolean = () => true, ttlMs = 60_000, sweepEveryMs = 15_000) {
    const registry = new client.Registry();
    const values = new ReadCache<{ text: string }>({ name: 'value', maxEntries: 100, ttlMs, live: () => true });
    const answers = new AnswerCache({ maxEntries, maxBytes, trusts, sweepEveryMs, timing: new RequestTiming(registry, pino({ level: 'silent' })), registry });
    let made = 0;
    const app = express();
    app.get('/value/:key', async (req, res) => {
      made++;
      // As the routes do: a token that no longer holds is refused.
      const principal = principalOf(req.headers.authorization);
      if (!trusts(principal)) {
        res.status(401).send('token_revoked');
        return;
      }
      const key = String(req.params['key']);
      const value = await values.read(key, async () => ({ text: `${key}:${'v'.repeat(Number(req.query['size'] ?? 10))}` }));
      answers.keep(req, res, principal, [answerSource(values, key, '', value)]);
      res.vary('User-Agent').type('text').send(value.text);
    });
    const server = http.createServer((req, res) => {
      if (!answers.serve(req, res)) app(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return { answers, values, url, made: () => made, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }

  it('are bounded in number and bytes, the least recently used going first', async () => {
    const s = await small(3, 5000);
    try {
      const get = (key: string, auth = 'a', size = 10) => request(s.url, `/value/${key}?size=${size}`, { headers: { Authorization: auth } });
      for (const key of ['k1', 'k2', 'k3']) await get(key);
      expect(s.answers.size).toBe(3);
      // Each weighs its body, its key (URL and token) and its headers, not its body alone.
      expect(s.answers.heldBytes).toBeGreaterThan(3 * 300);
      await get('k1'); // from memory, and now the most recently used
      expect(s.made()).toBe(3);
      await get('k4');
      expect(s.answers.size).toBe(3);
      await get('k1');
      expect(s.made()).toBe(4);
      await get('k2'); // went first
      expect(s.made()).toBe(5);
      // Bytes: answers of 2,600 and 2,400 bytes do not fit together.
      await get('big1', 'a', 2600);
      await get('big2', 'a', 2400);
      expect(s.answers.heldBytes).toBeLessThanOrEqual(5000);
      await get('big1', 'a', 2600);
      expect(s.made()).toBe(8);
      // An answer over the whole budget is never held.
      await get('huge', 'a', 6000);
      await get('huge', 'a', 6000);
      expect(s.made()).toBe(10);
    } finally {
      await s.close();
    }
  });

  it('are never kept when made from what their read cache did not keep', async () => {
    const s = await small(100, 100_000, () => true, 0);
    try {
      await request(s.url, '/value/k', { headers: { Authorization: 'a' } });
      await request(s.url, '/value/k', { headers: { Authorization: 'a' } });
      expect(s.made()).toBe(2);
      expect([s.answers.size, s.answers.heldBytes]).toEqual([0, 0]);
    } finally {
      await s.close();
    }
  });

  it('are swept out once they can no longer be served, without waiting for their next request', async () => {
    const revoked = new Set<string>();
    const s = await small(100, 100_000, (p) => !revoked.has(p.sessionId), 60_000, 0);
    try {
      const get = (key: string, auth = 'a') => request(s.url, `/value/${key}`, { headers: { Authorization: auth } });
      for (const key of ['k1', 'k2', 'k3']) await get(key);
      await get('k3', 'b');
      expect(s.answers.size).toBe(4);
      s.values.invalidate('k1');
      s.values.invalidate('k2');
      await get('k4');
      expect(s.answers.size).toBe(3);
      revoked.add('a');
      await get('k5', 'b');
      // Only b's answers are left: its k3 and its k5.
      expect(s.answers.size).toBe(2);
    } finally {
      await s.close();
    }
  });

  it('are let go once their token no longer holds', async () => {
    let trusted = true;
    const s = await small(100, 100_000, () => trusted);
    try {
      await request(s.url, '/value/k', { headers: { Authorization: 'a' } });
      expect(s.answers.size).toBe(1);
      trusted = false;
      expect((await request(s.url, '/value/k', { headers: { Authorization: 'a' } })).status).toBe(401);
      expect(s.made()).toBe(2);
      expect([s.answers.size, s.answers.heldBytes]).toEqual([0, 0]);
    } finally {
      await s.close();
    }
  });

  it('hold one answer per variant, each replaced by its newer copy, at most eight per request', async () => {
    const s = await small(100, 100_000);
    try {
      const get = (agent: string) => request(s.url, '/value/k', { headers: { Authorization: 'a', 'User-Agent': agent } });
      for (let i = 0; i < 10; i++) await get(`agent-${i}`);
      expect(s.answers.size).toBe(8);
      const bytes = s.answers.heldBytes;
      s.values.invalidate('k');
      await get('agent-9');
      await get('agent-9');
      expect(s.made()).toBe(11);
      expect(s.answers.size).toBe(8);
      expect(s.answers.heldBytes).toBe(bytes);
      s.answers.clear();
      expect([s.answers.size, s.answers.heldBytes]).toEqual([0, 0]);
    } finally {
      await s.close();
    }
  });
});
