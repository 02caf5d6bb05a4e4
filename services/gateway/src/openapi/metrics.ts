import { okResponse, errorResponses } from './components';
import type { OpenApiResource } from './types';

export const metricsOpenApi: OpenApiResource = {
  tag: { name: 'Monitoring' },
  paths: {
    '/metrics': {
      get: {
        operationId: 'getMetrics',
        summary: 'Prometheus metrics',
        description:
          "The gateway's metrics in the Prometheus text format: Node's process metrics and `gef_http_request_duration_seconds{method, route, status}` (route is the path template, `unmatched` for unknown paths). With several gateway processes (GATEWAY_WORKERS), the sums over all of them.",
        tags: ['Monitoring'],
        security: [],
        responses: {
          '200': okResponse('The metrics.', {
            'text/plain': { schema: { type: 'string' }, example: 'gef_http_request_duration_seconds_count{method="GET",route="/ping",status="200"} 1\n' },
          }),
          ...errorResponses(503),
        },
      },
    },
  },
};
