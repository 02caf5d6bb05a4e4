import { Unavailable } from '@gef/common';
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
        let text: string;
        try {
          text = await ctx.metricsText();
        } catch (err) {
          ctx.logger.warn({ err: String(err) }, 'metrics unavailable');
          throw new Unavailable('Metrics are unavailable', 'unavailable');
        }
        res.setHeader('Content-Type', ctx.registry.contentType);
        res.send(text);
      },
    },
  ],
};
