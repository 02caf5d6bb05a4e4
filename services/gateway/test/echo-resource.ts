import { z } from 'zod';
import { parseInput } from '../src/validation';
import type { Resource } from '../src/routes/types';
import { errorResponses, jsonContent, okResponse, dataEnvelope, schemaRef } from '../src/openapi/components';

/**
 * A resource that exists only in tests: a JSON body route, to exercise body reading,
 * validation and the error envelope before the real resources arrive.
 */
const echoBody = z.object({ name: z.string().min(1), count: z.number().int().optional() });

export const echoResource: Resource = {
  name: 'echo',
  openapi: {
    tag: { name: 'Test' },
    schemas: {
      Echo: { type: 'object', required: ['name'], properties: { name: { type: 'string' }, count: { type: 'integer' } } },
    },
    paths: {
      '/test/echo': {
        post: {
          operationId: 'echo',
          summary: 'Echo a JSON body',
          security: [],
          requestBody: { required: true, content: jsonContent(schemaRef('Echo')) },
          responses: { '200': okResponse('The body.', jsonContent(dataEnvelope(schemaRef('Echo')))), ...errorResponses(400, 413, 415) },
        },
      },
      '/auth/test': {
        post: {
          operationId: 'authEcho',
          summary: 'Echo on an /auth path',
          security: [],
          requestBody: { required: true, content: jsonContent(schemaRef('Echo')) },
          responses: { '200': okResponse('The body.', jsonContent(dataEnvelope(schemaRef('Echo')))), ...errorResponses(400) },
        },
      },
      '/test/download': {
        get: {
          operationId: 'download',
          summary: 'A raw download, never compressed',
          security: [],
          responses: { '200': okResponse('Bytes.', { 'application/gzip': { schema: { type: 'string' } } }) },
        },
      },
      '/test/items/{item}': {
        get: {
          operationId: 'getItem',
          summary: 'A path parameter',
          security: [],
          parameters: [{ name: 'item', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': okResponse('The item.', jsonContent(dataEnvelope({ type: 'string' }))) },
        },
      },
      '/test/items/special': {
        get: {
          operationId: 'getSpecialItem',
          summary: 'A fixed path beside a parameter',
          security: [],
          responses: { '200': okResponse('The item.', jsonContent(dataEnvelope({ type: 'string' }))) },
        },
      },
    },
  },
  routes: () => [
    {
      method: 'post',
      path: '/test/echo',
      operationId: 'echo',
      body: 'json',
      handler: (req, res) => {
        res.json({ data: parseInput(echoBody, req.body) });
      },
    },
    {
      method: 'post',
      path: '/auth/test',
      operationId: 'authEcho',
      body: 'json',
      handler: (req, res) => {
        res.json({ data: parseInput(echoBody, req.body) });
      },
    },
    {
      method: 'get',
      path: '/test/download',
      operationId: 'download',
      compress: false,
      handler: (_req, res) => {
        res.type('application/json').send(Buffer.alloc(64 * 1024, 0x20));
      },
    },
    // Declared before the fixed path on purpose: the mount orders them.
    {
      method: 'get',
      path: '/test/items/{item}',
      operationId: 'getItem',
      handler: (req, res) => {
        res.json({ data: `item ${String(req.params['item'])}` });
      },
    },
    {
      method: 'get',
      path: '/test/items/special',
      operationId: 'getSpecialItem',
      handler: (_req, res) => {
        res.json({ data: 'special' });
      },
    },
  ],
};
