import { createServiceServer, type HealthCheck, type Logger } from '@gef/common';
import type client from 'prom-client';
import type { UserServiceDeps } from './handlers/user-service';
import { routes } from './routes';

/** Builds the user service's RPC server, unstarted (tests listen on port 0). */
export function buildServer(options: {
  deps: UserServiceDeps;
  checks: Record<string, HealthCheck>;
  logger: Logger;
  registry: client.Registry;
}) {
  return createServiceServer({ name: 'user', routes: routes(options.deps), ...options });
}
