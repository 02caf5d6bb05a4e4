import { DEFAULT_PORTS, describePort, resolveConfig, resolvePorts } from '../src/config';
import { PrerequisiteError } from '../src/errors';
import { parseParts } from '../src/parts';

describe('parseParts', () => {
  test('defaults to every part in start order', () => {
    expect(parseParts(undefined)).toEqual(['postgres', 'temporal', 'keycloak', 'maildev', 'user', 'script', 'execution', 'runner', 'gateway']);
    expect(parseParts('all')).toHaveLength(9);
  });

  test('infra is the four infrastructure parts; lists keep start order', () => {
    expect(parseParts('infra')).toEqual(['postgres', 'temporal', 'keycloak', 'maildev']);
    expect(parseParts('gateway, postgres')).toEqual(['postgres', 'gateway']);
    expect(parseParts('infra,user')).toEqual(['postgres', 'temporal', 'keycloak', 'maildev', 'user']);
  });

  test('an unknown part is an error naming it', () => {
    expect(() => parseParts('postgres,redis')).toThrow(/unknown part "redis"/);
  });
});

describe('resolvePorts', () => {
  test('defaults follow docs/configuration.md', () => {
    const ports = resolvePorts(undefined, {});
    expect(ports).toMatchObject({ gateway: 3000, postgres: 5432, temporal: 7233, temporalUi: 8233, keycloak: 8080, keycloakManagement: 9000, maildevSmtp: 1025, maildevWeb: 1080 });
    expect(ports).toMatchObject({ user: 50051, script: 50052, execution: 50053, userMetrics: 9101, scriptMetrics: 9102, executionMetrics: 9103, runnerMetrics: 9104 });
  });

  test('the launcher variables choose ports, explicit options win over them', () => {
    const env = { PORT: '4000', PG_PORT: '6543', MAILDEV_WEB_PORT: '1181' };
    expect(resolvePorts(undefined, env)).toMatchObject({ gateway: 4000, postgres: 6543, maildevWeb: 1181, temporal: 7233 });
    expect(resolvePorts({ postgres: 7000 }, env).postgres).toBe(7000);
  });

  test('a bad value is one line naming the variable', () => {
    expect(() => resolvePorts(undefined, { PG_PORT: 'five' })).toThrow(new PrerequisiteError('PG_PORT=five is not a port number (1-65535)'));
    expect(() => resolvePorts(undefined, { KEYCLOAK_PORT: '70000' })).toThrow(/^KEYCLOAK_PORT=70000 is not a port number/);
  });

  test('two parts on one port is refused', () => {
    expect(() => resolvePorts(undefined, { PORT: '8080' })).toThrow('port 8080 is given to both PORT and KEYCLOAK_PORT; choose distinct ports');
  });

  test('ports without a variable are described by what they are', () => {
    expect(describePort('postgres')).toBe('PG_PORT');
    expect(describePort('runnerMetrics')).toBe('runner metrics');
  });
});

describe('resolveConfig', () => {
  test('data and cache dirs come from the environment, logs sit under the data dir', () => {
    const config = resolveConfig({ processEnv: { GEF_DATA_DIR: '/srv/gef', GEF_CACHE_DIR: '/var/cache/gef' } });
    expect(config.dataDir).toBe('/srv/gef');
    expect(config.cacheDir).toBe('/var/cache/gef');
    expect(config.logDir).toBe('/srv/gef/logs');
    expect(config.ports).toEqual(DEFAULT_PORTS);
  });

  test('development defaults for mode and secrets; the environment and extra env override them', () => {
    const dev = resolveConfig({ processEnv: {} });
    expect(dev.settings).toMatchObject({ gefEnv: 'development', keycloakClientSecret: 'gef-api-dev-secret', keycloakAdmin: 'admin' });
    const given = resolveConfig({ processEnv: { GEF_ENV: 'test', KEYCLOAK_CLIENT_SECRET: 'from-env' }, env: { KEYCLOAK_CLIENT_SECRET: 'from-options' } });
    expect(given.settings).toMatchObject({ gefEnv: 'test', keycloakClientSecret: 'from-options' });
  });

  test('the data dir defaults to .data in the repository', () => {
    const config = resolveConfig({ processEnv: {}, repoRoot: '/repo' });
    expect(config.dataDir).toBe('/repo/.data');
  });
});
