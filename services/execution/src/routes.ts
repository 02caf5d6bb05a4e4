import type { ConnectRouter } from '@connectrpc/connect';
import { execution } from '@gef/protos';
import { executionService, type ExecutionServiceDeps } from './handlers/execution-service';

/** Every RPC of the execution service (health is added by the common server). */
export function routes(deps: ExecutionServiceDeps) {
  return (router: ConnectRouter) => {
    router.service(execution.ExecutionService, executionService(deps));
  };
}
