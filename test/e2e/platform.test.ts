/**
 * The platform as a client sees it: health of every part (and 503 naming what is down),
 * the error envelope, gzip request bodies, the OpenAPI document, the gateway's worker
 * processes, metrics on every process; the services answering only the platform's parts.
 */
import { availableParallelism } from 'node:os';
import { gzipSync } from 'node:zlib';
import { randomUUID } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import { runnerKeyDevSecret, serviceClient } from '@gef/common';
import { childrenOf } from '@gef/deploy';
import { execution, user } from '@gef/protos';
import { apiUrl, readStackInfo, startPart, stopPart } from '../harness/stack';
import { api } from './helpers/api';
import { eventually } from './helpers/wait';

jest.setTimeout(180_000);

async function healthUntil(status: number, timeoutMs = 60_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await api('GET', '/api-health');
    if (res.status === status) return res.body;
    if (Date.now() > deadline) throw new Error(`api-health stayed ${res.status}: ${res.text}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('health', () => {
  it('reports every part up', async () => {
    const body = await healthUntil(200);
    expect(body.status).toBe('ok');
    expect(body.timestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/);
    for (const name of ['user_service', 'script_service', 'execution_service', 'keycloak', 'database', 'temporal']) {
      expect(body.dependencies[name]?.status).toBe('up');
    }
    const ping = await api('GET', '/ping/');
    expect(ping.status).toBe(200);
    expect(ping.body).toMatchObject({ status: 'ok', message: 'pong' });
  });

  it.each([
    ['keycloak', 'keycloak'],
    ['temporal', 'temporal'],
    ['script', 'script_service'],
  ] as const)('turns 503 naming %s when it stops, and recovers when it returns', async (part, name) => {
    await healthUntil(200);
    await stopPart(part);
    try {
      const body = await healthUntil(503, 30_000);
      expect(body.status).toBe('unhealthy');
      expect(body.dependencies[name].status).toBe('down');
      expect(body.detail).toContain(name);
      expect(JSON.stringify(body)).not.toMatch(/postgres:\/\/|password/i);
    } finally {
      await startPart(part);
    }
    await healthUntil(200, 90_000);
  });
});

describe('the error envelope', () => {
  it('answers unknown routes, wrong methods and malformed bodies with the contract body', async () => {
    const missing = await api('GET', '/api/v1/nothing-here');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ status: 404, detail: expect.any(String), error: 'not_found' });

    const method = await api('DELETE', '/ping');
    expect(method.status).toBe(405);
    expect(method.body.status).toBe(405);

    const malformed = await api('POST', '/auth', { raw: '{"email": ', headers: { 'Content-Type': 'application/json' } });
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({ status: 400, error: 'invalid_argument' });
    expect(malformed.body.msg).toBe(malformed.body.detail);
    expect(malformed.body.message).toBe(malformed.body.detail);
    expect(malformed.text).not.toMatch(/\bat .+\.ts:\d+/);

    const badId = await api('GET', '/api/v1/user/not-a-uuid', { token: 'x' });
    expect(badId.status).toBe(401);
    expect(badId.body.error).toBe('invalid_token');
  });
});

describe('request bodies', () => {
  it('accepts gzip-compressed JSON and refuses bombs with 413', async () => {
    const wrong = await api('POST', '/auth', { body: { email: 'nobody@example.org', password: 'Wrong-Passw0rd!' }, gzip: true });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ status: 401, detail: 'Invalid credentials', msg: 'Invalid credentials' });

    const bomb = gzipSync(Buffer.from(`{"email":"${'a'.repeat(20 * 1024 * 1024)}"}`));
    const res = await api('POST', '/auth', { raw: bomb, headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' } });
    expect(res.status).toBe(413);
    expect(res.body.error).toBe('payload_too_large');
  });
});

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1 and documents the login and user routes', async () => {
    const res = await api('GET', '/swagger.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toMatch(/^3\.1\./);
    for (const path of ['/ping', '/api-health', '/auth', '/auth/refresh', '/api/v1/user', '/api/v1/user/{user}']) {
      expect(Object.keys(res.body.paths)).toContain(path);
    }
    const docs = await api('GET', '/api/docs');
    expect(docs.status).toBe(200);
    expect(docs.text).toContain('swagger');
  });
});

/** The gateway primary's workers (tsx's esbuild is a child of it too). */
const workersOf = (pid: number): number[] => childrenOf(pid, process.execPath);

/** The count of requests to GET /ping in the gateway's metrics text. */
function pingCount(metrics: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith('gef_http_request_duration_seconds_count{') && l.includes('route="/ping"') && l.includes('status="200"'));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('the gateway’s workers', () => {
  it('serve with one process per core, sum their metrics, and a worker that dies is replaced', async () => {
    const primary = readStackInfo().pids.gateway;
    expect(primary).toBeDefined();
    const workers = workersOf(primary!);
    expect(workers).toHaveLength(availableParallelism());
    if (workers.length < 2) return;

    // Requests on fresh connections go round the workers; /metrics answers the sums of all.
    const ping = () => fetch(`${apiUrl()}/ping`, { headers: { Connection: 'close' }, signal: AbortSignal.timeout(10_000) });
    const before = pingCount((await api('GET', '/metrics')).text);
    for (let i = 0; i < 20; i++) expect((await ping()).status).toBe(200);
    expect(pingCount((await api('GET', '/metrics')).text)).toBe(before + 20);

    // A worker killed outright (what it was handed at that moment is lost, as with any
    // crash): the primary starts another, and every request is served again.
    process.kill(workers[0]!, 'SIGKILL');
    await eventually(
      async () => {
        const now = workersOf(primary!);
        return now.length === workers.length && !now.includes(workers[0]!);
      },
      30_000,
      'a new gateway worker in place of the killed one',
    );
    // The metrics answer while the new worker starts (they are the serving workers' sums).
    expect((await api('GET', '/metrics')).status).toBe(200);
    await eventually(async () => (await ping()).status === 200, 30_000, 'the gateway answering after the kill');
    for (let i = 0; i < 20; i++) expect((await ping()).status).toBe(200);
    await eventually(async () => (await api('GET', '/api-health')).status === 200, 30_000, '/api-health 200 with the new worker');
  });
});

describe('metrics', () => {
  it('are served by every process in Prometheus text format', async () => {
    const info = readStackInfo();
    const gateway = await api('GET', '/metrics');
    expect(gateway.status).toBe(200);
    expect(gateway.text).toContain('process_cpu_user_seconds_total');
    for (const service of ['user', 'script', 'execution', 'runner'] as const) {
      const port = info.env[service]['METRICS_PORT'];
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain(`service="${service}"`);
    }
  });
});

describe("the services answer only the platform's parts", () => {
  const urlOf = (part: 'user' | 'execution') => `http://127.0.0.1:${readStackInfo().env[part]['PORT']}`;
  const codeOf = (call: Promise<unknown>): Promise<Code | 'answered'> =>
    call.then(
      () => 'answered' as const,
      (err: unknown) => ConnectError.from(err).code,
    );
  const superadmin = { userId: randomUUID(), role: user.Role.SUPERADMIN };

  it('a request without a key, whatever caller it names, is refused; so is a runner asking for what is not a runner’s', async () => {
    const users = serviceClient(user.UserService, urlOf('user'));
    expect(await codeOf(users.listUsers({ caller: superadmin }))).toBe(Code.Unavailable);
    const executions = serviceClient(execution.ExecutionService, urlOf('execution'));
    // The RPC that hands a runner a run's tokens.
    expect(await codeOf(executions.startExecutionAttempt({ executionId: randomUUID(), attempt: 1, runner: 'intruder' }))).toBe(Code.Unavailable);
    const asRunner = serviceClient(execution.ExecutionService, urlOf('execution'), { serviceKey: runnerKeyDevSecret.devValue });
    expect(await codeOf(asRunner.listExecutions({ caller: superadmin }))).toBe(Code.PermissionDenied);
    expect(await codeOf(serviceClient(user.UserService, urlOf('user'), { serviceKey: runnerKeyDevSecret.devValue }).listUsers({ caller: superadmin }))).toBe(
      Code.Unavailable,
    );
  });
});
