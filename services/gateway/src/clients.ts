import type { Client } from '@connectrpc/connect';
import { execution, health, script, user } from '@gef/protos';
import { keyToSend, serviceClient } from '@gef/common';
import type { GatewayConfig } from './config';

/** The services behind the gateway, by the name used in health reports. */
export const serviceNames = ['user', 'script', 'execution'] as const;
export type ServiceName = (typeof serviceNames)[number];

/** RPC clients of the services (one HTTP/2 transport per service per process). */
export interface ServiceClients {
  health: Record<ServiceName, Client<typeof health.HealthService>>;
  user: Client<typeof user.UserService>;
  script: Client<typeof script.ScriptService>;
  execution: Client<typeof execution.ExecutionService>;
}

export function serviceUrls(config: GatewayConfig): Record<ServiceName, string> {
  return {
    user: config.USER_SERVICE_URL,
    script: config.SCRIPT_SERVICE_URL,
    execution: config.EXECUTION_SERVICE_URL,
  };
}

export function createServiceClients(config: GatewayConfig): ServiceClients {
  const urls = serviceUrls(config);
  const options = { serviceKey: keyToSend(config.SERVICE_API_KEY) };
  return {
    health: {
      user: serviceClient(health.HealthService, urls.user, options),
      script: serviceClient(health.HealthService, urls.script, options),
      execution: serviceClient(health.HealthService, urls.execution, options),
    },
    user: serviceClient(user.UserService, urls.user, options),
    script: serviceClient(script.ScriptService, urls.script, options),
    execution: serviceClient(execution.ExecutionService, urls.execution, options),
  };
}
