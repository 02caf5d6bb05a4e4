import { platformVersion } from '@gef/common';
import { healthOpenApi } from '../openapi/health';
import { buildHealthReport } from '../health-report';
import { shareInFlight } from '../share-in-flight';
import type { Resource } from './types';

export const healthResource: Resource = {
  name: 'health',
  openapi: healthOpenApi,
  routes: (ctx) => {
    const targets = {
      clients: ctx.clients.health,
      keycloakDiscoveryUrl: `${ctx.config.KEYCLOAK_URL}/realms/${encodeURIComponent(ctx.config.KEYCLOAK_REALM)}/.well-known/openid-configuration`,
      version: platformVersion,
    };
    // Concurrent requests share one round of checks: an unauthenticated route must not
    // multiply calls to every dependency.
    const report = shareInFlight(() => buildHealthReport(targets));
    return [
      {
        method: 'get',
        path: '/api-health',
        operationId: 'getHealth',
        handler: async (req, res) => {
          const result = await report();
          if (result.status !== 'ok') req.log.warn({ detail: result.detail }, 'unhealthy');
          res.status(result.status === 'ok' ? 200 : 503).json(result);
        },
      },
    ];
  },
};
