import { jsonContent, okResponse, errorResponses, schemaRef } from './components';
import type { OpenApiResource } from './types';

export const pingOpenApi: OpenApiResource = {
  tag: { name: 'Monitoring', description: 'Liveness, health, metrics.' },
  schemas: {
    Ping: {
      type: 'object',
      required: ['status', 'message', 'timestamp'],
      properties: {
        status: { const: 'ok' },
        message: { const: 'pong' },
        timestamp: schemaRef('ApiDate'),
      },
    },
  },
  paths: {
    '/ping': {
      get: {
        operationId: 'ping',
        summary: 'Liveness',
        description: 'Answers as long as the gateway process runs; checks no dependency. No authentication.',
        tags: ['Monitoring'],
        security: [],
        responses: {
          '200': okResponse(
            'The gateway is alive.',
            jsonContent(schemaRef('Ping'), { status: 'ok', message: 'pong', timestamp: '2026-11-28T05:13:18.000000' }),
          ),
          ...errorResponses(),
        },
      },
    },
  },
};
