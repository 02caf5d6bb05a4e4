import { ConfigError } from '@gef/common';
import { workerCount } from '../src/cluster';
import { loadConfig } from '../src/config';

describe('gateway configuration', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      GEF_ENV: 'development',
      HOST: '127.0.0.1',
      PORT: 3000,
      KEYCLOAK_URL: 'http://127.0.0.1:8080',
      KEYCLOAK_REALM: 'gef',
      KEYCLOAK_CLIENT_ID: 'gef-api',
      PUBLIC_URL: 'http://localhost:3000',
      USER_SERVICE_URL: 'http://127.0.0.1:50051',
      SCRIPT_SERVICE_URL: 'http://127.0.0.1:50052',
      EXECUTION_SERVICE_URL: 'http://127.0.0.1:50053',
      CORS_ORIGINS: [],
      BODY_LIMIT_BYTES: 1_048_576,
      UPLOAD_LIMIT_BYTES: 52_428_800,
    });
  });

  it('runs one worker per core unless GATEWAY_WORKERS says how many', () => {
    expect(loadConfig({}).GATEWAY_WORKERS).toBe(0);
    expect(workerCount(loadConfig({}).GATEWAY_WORKERS, 2)).toBe(2);
    expect(workerCount(loadConfig({ GATEWAY_WORKERS: '1' }).GATEWAY_WORKERS, 2)).toBe(1);
    expect(workerCount(loadConfig({ GATEWAY_WORKERS: '3' }).GATEWAY_WORKERS, 2)).toBe(3);
    expect(workerCount(0, 0)).toBe(1);
    for (const bad of ['-1', 'two', '1.5', '65']) expect(() => loadConfig({ GATEWAY_WORKERS: bad })).toThrow(ConfigError);
  });

  it('reads lists and strips trailing slashes from URLs', () => {
    const config = loadConfig({ CORS_ORIGINS: 'https://a.example, https://b.example ,', KEYCLOAK_URL: 'https://kc.example/auth/' });
    expect(config.CORS_ORIGINS).toEqual(['https://a.example', 'https://b.example']);
    expect(config.KEYCLOAK_URL).toBe('https://kc.example/auth');
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['BODY_LIMIT_BYTES', '-1'],
    ['USER_SERVICE_URL', 'not a url'],
    ['KEYCLOAK_URL', 'ftp://kc.example'],
    ['GEF_ENV', 'staging'],
  ])('refuses %s=%s, naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(name));
  });

  it('refuses development secrets in production', () => {
    expect(() => loadConfig({ GEF_ENV: 'production' })).toThrow(/EXECUTION_TOKEN_SECRET.*SERVICE_API_KEY/);
    expect(loadConfig({ GEF_ENV: 'production', EXECUTION_TOKEN_SECRET: 'real-2', SERVICE_API_KEY: 'real-platform-key-0123' }).GEF_ENV).toBe('production');
  });

  it("needs no Keycloak client secret: the gateway checks Keycloak's tokens by its public keys, and the secret manages users", () => {
    const config = loadConfig({ GEF_ENV: 'production', EXECUTION_TOKEN_SECRET: 'real-2', SERVICE_API_KEY: 'real-platform-key-0123', KEYCLOAK_CLIENT_SECRET: 'user-admin' });
    expect(Object.keys(config)).not.toContain('KEYCLOAK_CLIENT_SECRET');
  });
});
