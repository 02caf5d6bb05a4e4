import net from 'node:net';

/** A TCP proxy to PostgreSQL whose connections can die silently. */
export interface SilentProxy {
  /** `databaseUrl` through the proxy. */
  url: string;
  /**
   * The path of every connection open now dies without FIN or RST (a failover moving the
   * address, a dropped NAT or firewall entry): bytes either way are dropped, both sockets
   * stay open. Connections made afterwards work.
   */
  cut(): void;
  close(): Promise<void>;
}

export async function silentProxy(databaseUrl: string): Promise<SilentProxy> {
  const target = new URL(databaseUrl);
  const sockets = new Set<net.Socket>();
  const dead = new WeakSet<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (d) => {
      if (!dead.has(client)) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!dead.has(client)) client.write(d);
    });
    // A dead path carries no FIN either (close() ends what is left).
    client.on('close', () => {
      if (!dead.has(client)) upstream.destroy();
    });
    upstream.on('close', () => {
      if (!dead.has(client)) client.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(databaseUrl);
  url.port = String((server.address() as net.AddressInfo).port);
  return {
    url: url.toString(),
    cut() {
      for (const s of sockets) dead.add(s);
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
