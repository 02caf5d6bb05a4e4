import { createServiceServer, procedures, type HealthCheck, type Logger, type ServiceKeys } from '@gef/common';
import { execution } from '@gef/protos';
import type client from 'prom-client';
import type { ExecutionServiceDeps } from './handlers/execution-service';
import { routes } from './routes';

/** The RPCs runners call: a runner's key reaches only these. */
export const runnerMethods = procedures(execution.ExecutionService, [
  'startExecutionAttempt',
  'appendExecutionLogs',
  'completeExecutionAttempt',
  'reportRunner',
]);

/** Builds the execution service's RPC server, unstarted (tests listen on port 0). */
export function buildServer(options: {
  deps: ExecutionServiceDeps;
  checks: Record<string, HealthCheck>;
  logger: Logger;
  registry: client.Registry;
  keys: ServiceKeys;
}) {
  return createServiceServer({ name: 'execution', routes: routes(options.deps), ...options });
}
