import { metricsOpenApi } from '../openapi/metrics';
import type { Resource } from './types';

export const metricsResource: Resource = {
  name: 'metrics',
  openapi: metricsOpenApi,
  routes: (ctx) => [
    {
      method: 'get',
      path: '/metrics',
      operationId: 'getMetrics',
      handler: async (_req, res) => {
        const text = await ctx.registry.metrics();
        res.setHeader('Content-Type', ctx.registry.contentType);
        res.send(text);
      },
    },
  ],
};
