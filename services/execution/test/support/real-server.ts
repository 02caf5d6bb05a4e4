import type http2 from 'node:http2';
import type { Client } from '@connectrpc/connect';
import { closeServer, createLogger, listen, serviceClient } from '@gef/common';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { execution } from '@gef/protos';
import client from 'prom-client';
import { buildServer, runnerMethods } from '../../src/server';
import { serviceFixture, type ServiceFixture } from './service-fixture';

/** The service's real server (h2c, port 0) over a real PostgreSQL, and the transport every caller uses. */
export interface RealServer {
  pg: TestPostgres;
  f: ServiceFixture;
  /** A client showing the platform's key. */
  rpc: Client<typeof execution.ExecutionService>;
  /** Where the server listens, for clients of other keys. */
  url: string;
  stop(): Promise<void>;
}

/** The keys the test server accepts. */
export const testKeys = { service: 'test-service-key-0123456789', runner: 'test-runner-key-0123456789' };

export async function startRealServer(database: string): Promise<RealServer> {
  const pg = await startTestPostgres(database);
  const f = await serviceFixture(pg.url);
  const server: http2.Http2Server = buildServer({
    deps: f.deps,
    checks: {},
    logger: createLogger('execution-test', 'silent'),
    registry: new client.Registry(),
    keys: { service: testKeys.service, runner: { keys: testKeys.runner, methods: runnerMethods } },
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => sessions.add(s));
  const url = `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`;
  const rpc = serviceClient(execution.ExecutionService, url, { serviceKey: testKeys.service });
  return {
    pg,
    f,
    rpc,
    url,
    async stop() {
      // The client's connection ends with its session (the transport has no close).
      for (const s of sessions) s.destroy();
      await closeServer(server, 1000);
      await f.close();
      await pg.stop();
    },
  };
}
