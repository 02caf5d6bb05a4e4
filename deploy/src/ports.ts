import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { DEFAULT_PORTS, describePort, PART_PORTS, type PortName, type StackPorts } from './config';
import { PrerequisiteError } from './errors';
import type { PartName } from './parts';

function canListen(port: number, host: string): Promise<boolean | 'unsupported'> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) => {
      resolve(error.code === 'EAFNOSUPPORT' || error.code === 'EADDRNOTAVAIL' ? 'unsupported' : false);
    });
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * Whether nothing listens on the port on any local address: binding the wildcard
 * address fails if anything holds the port on 127.0.0.1, 0.0.0.0 or (dual stack) ::.
 */
export async function isPortFree(port: number): Promise<boolean> {
  const v6 = await canListen(port, '::');
  if (v6 === false) return false;
  const v4 = await canListen(port, '0.0.0.0');
  if (v4 === false) return false;
  return (await canListen(port, '127.0.0.1')) !== false;
}

export interface PortUse {
  name: PortName;
  port: number;
  part: PartName;
}

/** The ports the given parts listen on. */
export function portsOfParts(parts: readonly PartName[], ports: StackPorts): PortUse[] {
  return parts.flatMap((part) => PART_PORTS[part].map((name) => ({ name, port: ports[name], part })));
}

export async function findTakenPorts(uses: readonly PortUse[]): Promise<PortUse[]> {
  const taken: PortUse[] = [];
  for (const use of uses) if (!(await isPortFree(use.port))) taken.push(use);
  return taken;
}

/** One line naming every taken port, the variable that sets it and what to do. */
export function portsTakenMessage(taken: readonly PortUse[]): string {
  const list = taken.map((use) => `${use.port} (${describePort(use.name)}, ${use.part})`).join(', ');
  const plural = taken.length > 1;
  return `port${plural ? 's' : ''} ${list} ${plural ? 'are' : 'is'} already in use: stop what listens there (another launcher?) or choose other ports`;
}

/** Throws a PrerequisiteError (one line) if any port of these parts is taken. */
export async function assertPortsFree(parts: readonly PartName[], ports: StackPorts): Promise<void> {
  const taken = await findTakenPorts(portsOfParts(parts, ports));
  if (taken.length > 0) throw new PrerequisiteError(portsTakenMessage(taken));
}

/** Linux's range of local ports for bind(0) and outgoing connections; Linux's default when unreadable. */
export function parsePortRange(text: string | undefined): [number, number] {
  const [low, high] = (text ?? '').trim().split(/\s+/).map(Number);
  if (low === undefined || high === undefined || !Number.isInteger(low) || !Number.isInteger(high) || low < 1 || high > 65535 || low > high) return [32768, 60999];
  return [low, high];
}

function ephemeralRange(): [number, number] {
  try {
    return parsePortRange(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'));
  } catch {
    return parsePortRange(undefined);
  }
}

/** Where chosen ports come from: 20000-65535 outside the ephemeral range. */
export function portCandidates(ephemeral: [number, number]): number[] {
  const out: number[] = [];
  for (let port = 20_000; port <= 65_535; port++) if (port < ephemeral[0] || port > ephemeral[1]) out.push(port);
  return out;
}

/** Distinct free ports the system chose (bind to port 0), held open until each is known. */
async function systemChosenPorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => {
      return new Promise<Server>((resolve, reject) => {
        const server = createServer();
        server.once('error', reject);
        server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => resolve(server));
      });
    }),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/**
 * Distinct free ports, picked at random outside the system's ephemeral range. A port from
 * that range (what bind to port 0 gives) is free only until something takes it: every
 * outgoing connection gets a source port from it, and so does every other process's bind
 * to port 0 (the Temporal dev server picks its internal ports that way while the stack
 * starts). One of them taking a port chosen for a part before the part listened made the
 * part fail with EADDRINUSE, and a part restarted on its port could find it taken. Outside
 * the range only another process choosing ports on purpose can. Where the range leaves too
 * few ports, the system chooses.
 */
export async function findFreePorts(count: number): Promise<number[]> {
  const candidates = portCandidates(ephemeralRange());
  if (candidates.length < count * 20) return systemChosenPorts(count);
  const chosen: number[] = [];
  const tried = new Set<number>();
  while (chosen.length < count && tried.size < candidates.length) {
    const port = candidates[Math.floor(Math.random() * candidates.length)]!;
    if (tried.has(port)) continue;
    tried.add(port);
    if (await isPortFree(port)) chosen.push(port);
  }
  if (chosen.length < count) return systemChosenPorts(count);
  return chosen;
}

/** A full set of free ports for a stack (for tests that run beside `npm start`). */
export async function freeStackPorts(): Promise<StackPorts> {
  const names = Object.keys(DEFAULT_PORTS) as PortName[];
  const free = await findFreePorts(names.length);
  const ports = {} as StackPorts;
  names.forEach((name, index) => {
    ports[name] = free[index] as number;
  });
  return ports;
}
