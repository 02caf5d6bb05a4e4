import { safeDetail } from '../src/health-report';
import { request, startStack, type TestStack } from './support';

const apiDate = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/;
const address = /\d{1,3}(\.\d{1,3}){3}|localhost|:\d{4,5}\b|keycloak\.internal/;

describe('GET /ping', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack.stop());

  it('answers pong with a contract date, with or without a trailing slash', async () => {
    for (const path of ['/ping', '/ping/']) {
      const res = await request(stack.gateway.url, path);
      expect(res.status).toBe(200);
      const body = res.json();
      expect(body).toEqual({ status: 'ok', message: 'pong', timestamp: expect.stringMatching(apiDate) });
    }
  });
});

describe('GET /api-health', () => {
  let stack: TestStack;
  let afterEachQuiet: (() => void) | undefined;
  beforeEach(async () => {
    stack = await startStack();
  });
  afterEach(async () => {
    await stack.stop();
    // Let the slow check finish before stderr is restored.
    if (afterEachQuiet) await new Promise((r) => setTimeout(r, 1200));
    afterEachQuiet?.();
    afterEachQuiet = undefined;
  });

  it('is 200 with every dependency up', async () => {
    const res = await request(stack.gateway.url, '/api-health');
    expect(res.status).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ status: 'ok', version: '0.1.0', timestamp: expect.stringMatching(apiDate) });
    expect(body.detail).toBeUndefined();
    expect(Object.keys(body.dependencies).sort()).toEqual(
      [
        'user_service',
        'script_service',
        'execution_service',
        'keycloak',
        'keycloak_user',
        'database',
        'database_user',
        'database_script',
        'database_execution',
        'temporal',
        'temporal_script',
        'temporal_execution',
      ].sort(),
    );
    for (const dep of Object.values(body.dependencies) as { status: string; latency_ms: number }[]) {
      expect(dep.status).toBe('up');
      expect(typeof dep.latency_ms).toBe('number');
    }
  });

  it('is 503 naming a service that is down', async () => {
    await stack.services.execution.stop();
    const res = await request(stack.gateway.url, '/api-health/');
    expect(res.status).toBe(503);
    const body = res.json();
    expect(body.status).toBe('unhealthy');
    expect(body.detail).toBe('down: execution_service');
    expect(body.dependencies.execution_service).toMatchObject({ status: 'down', detail: 'unreachable' });
    expect(body.dependencies.user_service.status).toBe('up');
    // What the execution service would report is unknown, so it is not invented.
    expect(body.dependencies.database_execution).toBeUndefined();
    expect(res.text).not.toMatch(address);
  });

  it('is 503 naming Keycloak when its discovery URL does not answer', async () => {
    await stack.keycloak.stop();
    const res = await request(stack.gateway.url, '/api-health');
    expect(res.status).toBe(503);
    const body = res.json();
    expect(body.detail).toBe('down: keycloak');
    expect(body.dependencies.keycloak).toMatchObject({ status: 'down', detail: 'unreachable (ECONNREFUSED)' });
    expect(res.text).not.toMatch(address);
  });

  it("merges the services' own dependencies by name and never leaks addresses", async () => {
    stack.services.script.checks['temporal'] = async () => {
      throw new Error('connect ECONNREFUSED 10.1.2.3:7233 (postgres://gef:secret@db.internal:5432/gef)');
    };
    stack.services.user.checks['database'] = async () => {
      throw new Error('getaddrinfo ENOTFOUND db.internal:5432');
    };
    const res = await request(stack.gateway.url, '/api-health');
    expect(res.status).toBe(503);
    const body = res.json();
    expect(body.detail).toBe('down: database, temporal');
    expect(body.dependencies.temporal.status).toBe('down');
    expect(body.dependencies.temporal_script.status).toBe('down');
    expect(body.dependencies.temporal_execution.status).toBe('up');
    expect(body.dependencies.database.status).toBe('down');
    expect(body.dependencies.database_user.status).toBe('down');
    expect(body.dependencies.database_script.status).toBe('up');
    expect(body.dependencies.script_service.status).toBe('up');
    expect(res.text).not.toMatch(address);
    expect(res.text).not.toContain('secret');
  });

  it('reports a service that answers too slowly as down within about two seconds', async () => {
    // The fake service complains on stderr when the gateway gives up on its answer.
    const quiet = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    afterEachQuiet = () => quiet.mockRestore();
    stack.services.user.checks['database'] = () => new Promise((resolve) => setTimeout(resolve, 3000));
    const started = Date.now();
    const res = await request(stack.gateway.url, '/api-health');
    const elapsed = Date.now() - started;
    expect(res.status).toBe(503);
    expect(elapsed).toBeLessThan(4000);
    const body = res.json();
    // The service's own 2 s check and the gateway's 2 s deadline race; either way it is down.
    expect(body.detail).toMatch(/user_service|database/);
  });
});

describe('failure details', () => {
  it.each([
    ['connect ECONNREFUSED 127.0.0.1:5432', 'unreachable (ECONNREFUSED)'],
    ['getaddrinfo ENOTFOUND db.internal', 'unreachable (ENOTFOUND)'],
    ['could not reach postgres://gef:secret@db:5432/gef', 'could not reach <address>'],
    ['failed at [fe80::1]:7233', 'failed at <address>'],
    ['failed at 10.0.0.7:7233', 'failed at <address>'],
    ['failed at temporal.internal:7233', 'failed at <address>'],
    ['first line\n    at Object.<anonymous> (/srv/x.ts:1:1)', 'first line'],
    ['', 'unavailable'],
  ])('%j becomes %j', (input, expected) => {
    expect(safeDetail(new Error(input))).toBe(expected);
  });
});

describe('GET /metrics', () => {
  let stack: TestStack;
  let collections = 0;
  let requests = 0;
  /** Collections waiting to be released: all of them, so a test that fails never hangs. */
  const waiting: (() => void)[] = [];
  const release = () => {
    for (const resolve of waiting.splice(0)) resolve();
  };
  beforeAll(async () => {
    stack = await startStack(
      {},
      {
        // A collection that takes until released, as one through a cluster's primary does.
        metricsText: async () => {
          collections++;
          await new Promise<void>((resolve) => waiting.push(resolve));
          return '# metrics\n';
        },
      },
    );
    stack.gateway.server.on('request', () => requests++);
  });
  afterAll(() => stack.stop());

  it('concurrent scrapes share one collection; the next scrape collects afresh', async () => {
    const scrapes = Array.from({ length: 20 }, () => request(stack.gateway.url, '/metrics'));
    // Every scrape has reached the gateway (and had time to join) before the collection ends.
    for (let i = 0; i < 1000 && (collections === 0 || requests < 20); i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    release();
    const answers = await Promise.all(scrapes);
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(collections).toBe(1);
    const next = request(stack.gateway.url, '/metrics');
    for (let i = 0; i < 100 && collections === 1; i++) await new Promise((r) => setTimeout(r, 10));
    release();
    expect((await next).text).toBe('# metrics\n');
    expect(collections).toBe(2);
  });
});
