import { createServiceServer, type HealthCheck, type Logger } from '@gef/common';
import type client from 'prom-client';
import type { ExecutionServiceDeps } from './handlers/execution-service';
import { routes } from './routes';

/** Builds the execution service's RPC server, unstarted (tests listen on port 0). */
export function buildServer(options: {
  deps: ExecutionServiceDeps;
  checks: Record<string, HealthCheck>;
  logger: Logger;
  registry: client.Registry;
}) {
  return createServiceServer({ name: 'execution', routes: routes(options.deps), ...options });
}
