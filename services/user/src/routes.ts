import type { ConnectRouter } from '@connectrpc/connect';
import { user } from '@gef/protos';
import { userService, type UserServiceDeps } from './handlers/user-service';

/** Every RPC of the user service (health is added by the common server). */
export function routes(deps: UserServiceDeps) {
  return (router: ConnectRouter) => {
    router.service(user.UserService, userService(deps));
  };
}
