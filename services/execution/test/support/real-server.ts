import type http2 from 'node:http2';
import type { Client } from '@connectrpc/connect';
import { closeServer, createLogger, listen, serviceClient } from '@gef/common';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { execution } from '@gef/protos';
import client from 'prom-client';
import { buildServer } from '../../src/server';
import { serviceFixture, type ServiceFixture } from './service-fixture';

/** The service's real server (h2c, port 0) over a real PostgreSQL, and the transport every caller uses. */
export interface RealServer {
  pg: TestPostgres;
  f: ServiceFixture;
  rpc: Client<typeof execution.ExecutionService>;
  stop(): Promise<void>;
}

export async function startRealServer(database: string): Promise<RealServer> {
  const pg = await startTestPostgres(database);
  const f = await serviceFixture(pg.url);
  const server: http2.Http2Server = buildServer({ deps: f.deps, checks: {}, logger: createLogger('execution-test', 'silent'), registry: new client.Registry() });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => sessions.add(s));
  const rpc = serviceClient(execution.ExecutionService, `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`);
  return {
    pg,
    f,
    rpc,
    async stop() {
      // The client's connection ends with its session (the transport has no close).
      for (const s of sessions) s.destroy();
      await closeServer(server, 1000);
      await f.close();
      await pg.stop();
    },
  };
}
