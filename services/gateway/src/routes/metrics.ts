import { describeError, Unavailable } from '@gef/common';
import { metricsOpenApi } from '../openapi/metrics';
import { shareInFlight } from '../share-in-flight';
import type { Resource } from './types';

export const metricsResource: Resource = {
  name: 'metrics',
  openapi: metricsOpenApi,
  routes: (ctx) => {
    // Concurrent scrapes share one collection: with several workers each is a round of
    // messages through the primary, which also carries cache invalidations.
    const metricsText = shareInFlight(() => ctx.metricsText());
    return [
      {
        method: 'get',
        path: '/metrics',
        operationId: 'getMetrics',
        handler: async (_req, res) => {
          let text: string;
          try {
            text = await metricsText();
          } catch (err) {
            ctx.logger.warn({ err: describeError(err) }, 'metrics unavailable');
            throw new Unavailable('Metrics are unavailable', 'unavailable');
          }
          res.setHeader('Content-Type', ctx.registry.contentType);
          res.send(text);
        },
      },
    ];
  },
};
