import { resolveConfig, type StackPorts } from '../src/config';
import { runnerStopGraceMs, serviceEnv, serviceProcessEnv, stackUrls } from '../src/env';
import { readinessUrl } from '../src/services';

const ports: Partial<StackPorts> = { postgres: 6000, gateway: 6001, keycloak: 6002, maildevSmtp: 6003, temporal: 6004, user: 6005, script: 6006, execution: 6007 };
const config = resolveConfig({ processEnv: {}, dataDir: '/data', repoRoot: '/repo', ports });

describe('serviceEnv', () => {
  test('every service learns where the others are', () => {
    const env = serviceEnv('script', config);
    expect(env).toMatchObject({
      GEF_ENV: 'development',
      HOST: '127.0.0.1',
      TEMPORAL_ADDRESS: '127.0.0.1:6004',
      TEMPORAL_NAMESPACE: 'default',
      KEYCLOAK_URL: 'http://127.0.0.1:6002',
      KEYCLOAK_REALM: 'gef',
      KEYCLOAK_CLIENT_ID: 'gef-api',
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: '6003',
      PUBLIC_URL: 'http://localhost:6001',
      USER_SERVICE_URL: 'http://127.0.0.1:6005',
      SCRIPT_SERVICE_URL: 'http://127.0.0.1:6006',
      EXECUTION_SERVICE_URL: 'http://127.0.0.1:6007',
      GEF_DATA_DIR: '/data',
    });
  });

  test("each stack's runner gets sandbox users of its own, apart by the gateway's port", () => {
    const other = resolveConfig({ processEnv: {}, dataDir: '/data2', repoRoot: '/repo', ports: { ...ports, gateway: 6101 } });
    const base = Number(serviceEnv('runner', config).SANDBOX_UID_BASE);
    const otherBase = Number(serviceEnv('runner', other).SANDBOX_UID_BASE);
    expect(base).toBeGreaterThanOrEqual(900_000);
    expect(Math.abs(base - otherBase)).toBeGreaterThanOrEqual(1000);
  });

  test('each service with a database gets its own', () => {
    expect(serviceEnv('user', config).DATABASE_URL).toBe('postgres://postgres:postgres@127.0.0.1:6000/gef_user');
    expect(serviceEnv('script', config).DATABASE_URL).toBe('postgres://postgres:postgres@127.0.0.1:6000/gef_script');
    expect(serviceEnv('execution', config).DATABASE_URL).toBe('postgres://postgres:postgres@127.0.0.1:6000/gef_execution');
    expect(serviceEnv('gateway', config).DATABASE_URL).toBe('postgres://postgres:postgres@127.0.0.1:6000/gef_gateway');
  });

  test('ports per process: RPC PORT and METRICS_PORT; the gateway serves metrics on PORT', () => {
    expect(serviceEnv('user', config)).toMatchObject({ PORT: '6005', METRICS_PORT: '9101' });
    expect(serviceEnv('runner', config)).toMatchObject({ METRICS_PORT: '9104' });
    expect(serviceEnv('runner', config).PORT).toBeUndefined();
    expect(serviceEnv('gateway', config).PORT).toBe('6001');
    expect(serviceEnv('gateway', config).METRICS_PORT).toBeUndefined();
  });
});

describe('serviceProcessEnv', () => {
  const withShell = resolveConfig({
    processEnv: { PATH: '/bin', DATABASE_URL: 'postgres://leak', METRICS_PORT: '1', KEYCLOAK_CLIENT_SECRET: 'shell-secret' },
    env: { LOG_LEVEL: 'debug' },
    dataDir: '/data',
    repoRoot: '/repo',
    ports,
  });

  test('inherits the launcher environment, computed values win, extra env wins over both', () => {
    const env = serviceProcessEnv('user', withShell);
    expect(env.PATH).toBe('/bin');
    expect(env.DATABASE_URL).toBe('postgres://postgres:postgres@127.0.0.1:6000/gef_user');
    expect(env.METRICS_PORT).toBe('9101');
    expect(env.LOG_LEVEL).toBe('debug');
    expect(env.KEYCLOAK_CLIENT_SECRET).toBe('shell-secret');
  });

  test("only the user service gets the Keycloak client's secret, not even inherited by the others", () => {
    expect(serviceEnv('user', config).KEYCLOAK_CLIENT_SECRET).toBe('gef-api-dev-secret');
    for (const part of ['script', 'execution', 'gateway', 'runner'] as const) {
      expect({ part, secret: serviceProcessEnv(part, withShell).KEYCLOAK_CLIENT_SECRET }).toEqual({ part, secret: undefined });
    }
  });

  test("the runner gets no database credentials or shared secrets, not even inherited ones; only the runners' key", () => {
    const shell = resolveConfig({
      processEnv: { PATH: '/bin', SERVICE_API_KEY: 'platform-key-0123456789', RUNNER_API_KEY: 'runner-key-0123456789' },
      dataDir: '/data',
      repoRoot: '/repo',
      ports,
    });
    expect(serviceProcessEnv('runner', shell)).toMatchObject({ RUNNER_API_KEY: 'runner-key-0123456789' });
    expect(serviceProcessEnv('runner', shell).SERVICE_API_KEY).toBeUndefined();
    expect(serviceProcessEnv('execution', shell)).toMatchObject({ SERVICE_API_KEY: 'platform-key-0123456789', RUNNER_API_KEY: 'runner-key-0123456789' });
    expect(serviceProcessEnv('gateway', shell).RUNNER_API_KEY).toBeUndefined();
    const env = serviceProcessEnv('runner', withShell);
    expect(env.DATABASE_URL).toBeUndefined();
    expect(env.KEYCLOAK_CLIENT_SECRET).toBeUndefined();
    expect(env.METRICS_PORT).toBe('9104');
  });
});

test('readiness: /readyz on METRICS_PORT, /ping on the gateway', () => {
  expect(readinessUrl('execution', config)).toBe('http://127.0.0.1:9103/readyz');
  expect(readinessUrl('gateway', config)).toBe('http://127.0.0.1:6001/ping');
});

test('printed URLs', () => {
  const urls = stackUrls(config.ports, 'localhost');
  expect(urls.api).toBe('http://localhost:6001/api/v1');
  expect(urls.docs).toBe('http://localhost:6001/api/docs');
  expect(urls.keycloakAdmin).toBe('http://localhost:6002/admin/');
  expect(urls.temporalUi).toBe('http://localhost:8233');
});

describe('runnerStopGraceMs', () => {
  test("covers the runner's drain and kill grace, its defaults when unset or refused", () => {
    expect(runnerStopGraceMs({})).toBe((30 + 5 + 20 + 5) * 1000);
    expect(runnerStopGraceMs({ RUNNER_DRAIN_SECONDS: '120', SANDBOX_KILL_GRACE_SECONDS: '10' })).toBe((120 + 10 + 20 + 5) * 1000);
    expect(runnerStopGraceMs({ RUNNER_DRAIN_SECONDS: '0' })).toBe((0 + 5 + 20 + 5) * 1000);
    expect(runnerStopGraceMs({ RUNNER_DRAIN_SECONDS: 'soon', SANDBOX_KILL_GRACE_SECONDS: ' ' })).toBe((30 + 5 + 20 + 5) * 1000);
  });
});
