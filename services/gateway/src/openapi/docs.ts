import { docsAssetNames } from '../swagger-ui';
import { errorResponses, okResponse } from './components';
import type { OpenApiResource } from './types';

export const docsOpenApi: OpenApiResource = {
  tag: { name: 'Documentation', description: 'This document and the interactive docs built on it.' },
  paths: {
    '/swagger.json': {
      get: {
        operationId: 'getOpenApiDocument',
        summary: 'This OpenAPI 3.1 document',
        tags: ['Documentation'],
        security: [],
        responses: {
          '200': okResponse('The OpenAPI document.', {
            'application/json': { schema: { type: 'object', required: ['openapi', 'info', 'paths'] } },
          }),
          ...errorResponses(),
        },
      },
    },
    '/api/docs': {
      get: {
        operationId: 'getApiDocs',
        summary: 'Interactive API docs',
        description: 'Swagger UI on `/swagger.json`, served from the gateway itself (no external resources).',
        tags: ['Documentation'],
        security: [],
        responses: {
          '200': okResponse('The docs page.', { 'text/html': { schema: { type: 'string' } } }),
          ...errorResponses(),
        },
      },
    },
    '/api/docs/{asset}': {
      get: {
        operationId: 'getApiDocsAsset',
        summary: 'A file of the interactive docs',
        tags: ['Documentation'],
        security: [],
        parameters: [
          { name: 'asset', in: 'path', required: true, description: 'The file name.', schema: { type: 'string', enum: [...docsAssetNames] } },
        ],
        responses: {
          '200': okResponse('The file (cacheable for an hour).', {
            'text/css': { schema: { type: 'string' } },
            'text/javascript': { schema: { type: 'string' } },
            'image/png': { schema: { type: 'string', contentMediaType: 'image/png' } },
          }),
          ...errorResponses(404),
        },
      },
    },
  },
};
