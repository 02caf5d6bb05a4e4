import { createRpcServer, healthRoutes, platformVersion, type HealthCheck, type Logger } from '@gef/common';
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
  return createRpcServer({
    routes: (router) => {
      routes(options.deps)(router);
      healthRoutes('user', platformVersion, options.checks)(router);
    },
    logger: options.logger,
    registry: options.registry,
  });
}
