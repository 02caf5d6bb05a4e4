import { createServer, type Server } from 'node:net';
import { resolvePorts } from '../src/config';
import { PrerequisiteError } from '../src/errors';
import { assertPortsFree, findFreePorts, findTakenPorts, isPortFree, portsOfParts, portsTakenMessage } from '../src/ports';

function listen(host: string): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

const close = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));

describe('port checks', () => {
  test('a port something listens on (127.0.0.1 or the wildcard) is taken; a closed one is free', async () => {
    for (const host of ['127.0.0.1', '0.0.0.0']) {
      const { server, port } = await listen(host);
      expect(await isPortFree(port)).toBe(false);
      await close(server);
      expect(await isPortFree(port)).toBe(true);
    }
  });

  test('findFreePorts gives distinct free ports', async () => {
    const ports = await findFreePorts(17);
    expect(new Set(ports).size).toBe(17);
    for (const port of ports.slice(0, 3)) expect(await isPortFree(port)).toBe(true);
  });

  test('portsOfParts lists each part’s ports', () => {
    const ports = resolvePorts(undefined, {});
    expect(portsOfParts(['postgres', 'keycloak', 'gateway'], ports)).toEqual([
      { name: 'postgres', port: 5432, part: 'postgres' },
      { name: 'keycloak', port: 8080, part: 'keycloak' },
      { name: 'keycloakManagement', port: 9000, part: 'keycloak' },
      { name: 'gateway', port: 3000, part: 'gateway' },
    ]);
  });

  test('one line names each taken port, its variable and part, and what to do', () => {
    expect(portsTakenMessage([{ name: 'postgres', port: 5432, part: 'postgres' }])).toBe(
      'port 5432 (PG_PORT, postgres) is already in use: stop what listens there (another launcher?) or choose other ports',
    );
    const two = portsTakenMessage([
      { name: 'gateway', port: 3000, part: 'gateway' },
      { name: 'userMetrics', port: 9101, part: 'user' },
    ]);
    expect(two).toBe('ports 3000 (PORT, gateway), 9101 (user metrics, user) are already in use: stop what listens there (another launcher?) or choose other ports');
    expect(two).not.toContain('\n');
  });

  test('assertPortsFree throws a PrerequisiteError for the taken port only', async () => {
    const { server, port } = await listen('127.0.0.1');
    const [free] = await findFreePorts(1);
    const ports = resolvePorts({ postgres: port, temporal: free }, {});
    try {
      await expect(findTakenPorts(portsOfParts(['postgres'], ports))).resolves.toEqual([{ name: 'postgres', port, part: 'postgres' }]);
      const error = await assertPortsFree(['postgres'], ports).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PrerequisiteError);
      expect((error as Error).message).toBe(`port ${port} (PG_PORT, postgres) is already in use: stop what listens there (another launcher?) or choose other ports`);
    } finally {
      await close(server);
    }
  });
});
