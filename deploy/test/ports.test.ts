import { createServer, type Server } from 'node:net';
import { resolvePorts } from '../src/config';
import { PrerequisiteError } from '../src/errors';
import { readFileSync } from 'node:fs';
import { assertPortsFree, findFreePorts, findTakenPorts, isPortFree, parsePortRange, portCandidates, portsOfParts, portsTakenMessage } from '../src/ports';

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

  test('findFreePorts picks ports outside the range the system gives to bind(0) and outgoing connections', async () => {
    const range = parsePortRange(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'));
    const ports = await findFreePorts(17);
    for (const port of ports) expect({ port, inRange: port >= range[0] && port <= range[1] }).toEqual({ port, inRange: false });
    // What bind(0) gives is inside it (the ports the old way chose).
    const { server, port } = await listen('127.0.0.1');
    await close(server);
    expect(port >= range[0] && port <= range[1]).toBe(true);
  });

  test('the ephemeral range is read from its file, Linux’s default when unreadable', () => {
    expect(parsePortRange('32768\t60999\n')).toEqual([32768, 60999]);
    expect(parsePortRange('1024 65535')).toEqual([1024, 65535]);
    expect(parsePortRange(undefined)).toEqual([32768, 60999]);
    expect(parsePortRange('garbage')).toEqual([32768, 60999]);
    expect(parsePortRange('5000 4000')).toEqual([32768, 60999]);
  });

  test('candidates are 20000-65535 without the ephemeral range', () => {
    const candidates = portCandidates([32768, 60999]);
    expect(candidates[0]).toBe(20_000);
    expect(candidates).toContain(32_767);
    expect(candidates).not.toContain(32_768);
    expect(candidates).not.toContain(60_999);
    expect(candidates).toContain(61_000);
    expect(candidates.at(-1)).toBe(65_535);
    expect(candidates).toHaveLength(32_768 - 20_000 + 65_535 - 61_000 + 1);
    // A range that leaves nothing: the system chooses (findFreePorts falls back to bind(0)).
    expect(portCandidates([1024, 65535])).toEqual([]);
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
