import { createServiceServer, type HealthCheck, type Logger } from '@gef/common';
import type client from 'prom-client';
import type { ScriptServiceDeps } from './handlers/script-service';
import { routes } from './routes';

/** Builds the script service's RPC server, unstarted (tests listen on port 0). */
export function buildServer(options: {
  deps: ScriptServiceDeps;
  checks: Record<string, HealthCheck>;
  logger: Logger;
  registry: client.Registry;
}) {
  return createServiceServer({ name: 'script', routes: routes(options.deps), ...options });
}
