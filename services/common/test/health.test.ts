import { checkHealth, describeFailure } from '../src/health';

describe('health checks', () => {
  it('reports each dependency and is healthy only when all are up', async () => {
    const up = await checkHealth('user', '1.0.0', { database: async () => undefined, temporal: async () => undefined });
    expect(up.healthy).toBe(true);
    expect(up.dependencies.map((d) => [d.name, d.up])).toEqual([
      ['database', true],
      ['temporal', true],
    ]);

    const down = await checkHealth('user', '1.0.0', {
      database: async () => undefined,
      keycloak: async () => {
        throw new Error('connect ECONNREFUSED http://admin:secret@10.1.2.3:8080/realms');
      },
    });
    expect(down.healthy).toBe(false);
    const keycloak = down.dependencies.find((d) => d.name === 'keycloak');
    expect(keycloak?.up).toBe(false);
    expect(keycloak?.detail).not.toContain('secret');
    expect(keycloak?.detail).toContain('ECONNREFUSED');
  });

  it('treats a check that hangs as down', async () => {
    const res = await checkHealth('script', '1.0.0', { database: () => new Promise<void>(() => undefined) });
    expect(res.healthy).toBe(false);
    expect(res.dependencies[0]?.detail).toMatch(/no answer/);
  }, 10_000);

  it('describes failures in one line without addresses', () => {
    expect(describeFailure(new Error('first line\nsecond line'))).toBe('first line');
    expect(describeFailure('postgres://u:p@h/db is down')).toBe('<address> is down');
  });
});
