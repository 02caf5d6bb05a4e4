import type { ConnectRouter } from '@connectrpc/connect';
import { script } from '@gef/protos';
import { scriptService, type ScriptServiceDeps } from './handlers/script-service';

/** Every RPC of the script service (health is added by the common server). */
export function routes(deps: ScriptServiceDeps) {
  return (router: ConnectRouter) => {
    router.service(script.ScriptService, scriptService(deps));
  };
}
