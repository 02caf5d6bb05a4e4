import { jsonContent, okResponse, errorResponses, schemaRef, headerRef } from './components';
import { healthCheckTimeoutMs } from '../health-report';
import type { OpenApiResource } from './types';

const example = {
  status: 'ok',
  timestamp: '2026-11-28T05:13:18.000000',
  version: '0.1.0',
  dependencies: {
    user_service: { status: 'up', latency_ms: 2.1 },
    script_service: { status: 'up', latency_ms: 1.9 },
    execution_service: { status: 'up', latency_ms: 2.4 },
    keycloak: { status: 'up', latency_ms: 6.3 },
    database: { status: 'up', latency_ms: 1.2 },
    database_user: { status: 'up', latency_ms: 0.8 },
    database_script: { status: 'up', latency_ms: 1.1 },
    database_execution: { status: 'up', latency_ms: 1.2 },
    temporal: { status: 'up', latency_ms: 3.5 },
    temporal_script: { status: 'up', latency_ms: 3.1 },
    temporal_execution: { status: 'up', latency_ms: 3.5 },
  },
};

export const healthOpenApi: OpenApiResource = {
  tag: { name: 'Monitoring' },
  schemas: {
    DependencyState: {
      type: 'object',
      required: ['status', 'latency_ms'],
      properties: {
        status: { enum: ['up', 'down'] },
        latency_ms: { type: 'number', minimum: 0, description: 'How long the check took.' },
        detail: {
          type: 'string',
          description: 'Why it is down. Never holds addresses or credentials.',
          examples: ['unreachable', `no answer within ${healthCheckTimeoutMs} ms`],
        },
      },
    },
    HealthReport: {
      type: 'object',
      required: ['status', 'timestamp', 'version', 'dependencies'],
      properties: {
        status: { enum: ['ok', 'unhealthy'] },
        detail: {
          type: 'string',
          description: 'Only when unhealthy: what is down.',
          examples: ['down: temporal, keycloak'],
        },
        timestamp: schemaRef('ApiDate'),
        version: { type: 'string', examples: ['0.1.0'] },
        dependencies: {
          type: 'object',
          description:
            'One entry per service (`user_service`, `script_service`, `execution_service`), one for `keycloak` (checked by the gateway), and the dependencies the services report, merged by name (`database`, `temporal`, …: down when any service finds it down) and per service (`database_user`, `temporal_script`, …). A service that cannot be reached reports nothing of its own.',
          additionalProperties: schemaRef('DependencyState'),
        },
      },
    },
  },
  paths: {
    '/api-health': {
      get: {
        operationId: 'getHealth',
        summary: 'Health of the platform',
        description:
          `Asks every service for its health (and theirs: database, Temporal, …) and checks Keycloak, each within ${healthCheckTimeoutMs / 1000} s. No authentication.`,
        tags: ['Monitoring'],
        security: [],
        responses: {
          '200': okResponse('Everything is up.', jsonContent(schemaRef('HealthReport'), example)),
          '503': {
            description: 'Something is down: `status` is `unhealthy` and `detail` names what.',
            headers: { 'X-Request-Id': headerRef('XRequestId') },
            content: jsonContent(schemaRef('HealthReport')),
          },
          ...errorResponses(),
        },
      },
    },
  },
};
