import { buildOpenApiDocument } from '../src/openapi/document';
import { httpMethods, type OpenApiDocument, type OperationObject, type ParameterObject } from '../src/openapi/types';
import { resources } from '../src/routes';
import { echoResource } from './echo-resource';
import { compareWithDocument, documentedOperations, validateOpenApi } from './openapi-check';
import { request, startGateway, startStack, type TestStack } from './support';

describe('the OpenAPI document and the routes', () => {
  let stack: TestStack;
  let doc: OpenApiDocument;

  beforeAll(async () => {
    stack = await startStack();
    const res = await request(stack.gateway.url, '/swagger.json');
    expect(res.status).toBe(200);
    doc = res.json() as OpenApiDocument;
  });
  afterAll(() => stack.stop());

  it('serves every route it documents and documents every route it serves', () => {
    expect(compareWithDocument(stack.gateway.app, doc)).toEqual([]);
    // The routes required now, at least.
    const ops = documentedOperations(doc);
    for (const op of ['GET /ping', 'GET /api-health', 'GET /swagger.json', 'GET /api/docs', 'GET /metrics']) expect(ops).toContain(op);
  });

  it('gives each route the operationId the document has for it', () => {
    for (const route of stack.gateway.routes) {
      expect(doc.paths[route.path]?.[route.method]?.operationId).toBe(route.operationId);
    }
  });

  it('answers every documented operation with a status the document lists', async () => {
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of httpMethods) {
        const op = item[method] as OperationObject | undefined;
        if (!op) continue;
        const concrete = path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
          const param = op.parameters?.find((p): p is ParameterObject => 'name' in p && p.name === name);
          return encodeURIComponent(String(param?.schema.enum?.[0] ?? 'x'));
        });
        const res = await request(stack.gateway.url, concrete, { method: method.toUpperCase() });
        expect({ op: `${method} ${path}`, status: res.status, documented: Object.keys(op.responses).includes(String(res.status)) }).toEqual({
          op: `${method} ${path}`,
          status: res.status,
          documented: true,
        });
        expect(res.status).not.toBe(405);
      }
    }
  });

  it('is a valid OpenAPI 3.1 document', () => {
    expect(validateOpenApi(doc)).toEqual([]);
  });

  it('stays in agreement when a resource is added (the test resource)', async () => {
    const gateway = await startGateway({}, { resources: [...resources, echoResource] });
    try {
      expect(compareWithDocument(gateway.app, gateway.openapi)).toEqual([]);
      expect(validateOpenApi(gateway.openapi)).toEqual([]);
    } finally {
      await gateway.close();
    }
  });
});

describe('the agreement check can fail', () => {
  it('finds a route served outside the route table', async () => {
    const gateway = await startGateway();
    try {
      gateway.app.get('/rogue', (_req, res) => {
        res.json({});
      });
      expect(compareWithDocument(gateway.app, gateway.openapi)).toEqual(['served but not documented: GET /rogue']);
    } finally {
      await gateway.close();
    }
  });

  it('finds middleware serving a sub-path', async () => {
    const gateway = await startGateway();
    try {
      gateway.app.use('/static', (_req, res) => {
        res.end();
      });
      expect(compareWithDocument(gateway.app, gateway.openapi)).toHaveLength(1);
    } finally {
      await gateway.close();
    }
  });

  it('finds a documented operation that no route serves', async () => {
    const gateway = await startGateway();
    try {
      const doc = structuredClone(gateway.openapi);
      doc.paths['/api/v1/ghost'] = { get: { operationId: 'ghost', summary: 'Ghost', responses: { '200': { description: 'ok' } } } };
      const ping = doc.paths['/ping']!;
      ping.post = { operationId: 'postPing', summary: 'x', responses: { '200': { description: 'ok' } } };
      expect(compareWithDocument(gateway.app, doc).sort()).toEqual(['documented but not served: GET /api/v1/ghost', 'documented but not served: POST /ping']);
    } finally {
      await gateway.close();
    }
  });

  it('finds a resource whose routes and paths disagree', async () => {
    const broken = { ...echoResource, openapi: { ...echoResource.openapi, paths: { ...echoResource.openapi.paths } } };
    delete broken.openapi.paths['/test/download'];
    const gateway = await startGateway({}, { resources: [...resources, broken] });
    try {
      expect(compareWithDocument(gateway.app, gateway.openapi)).toEqual([
        'served but not documented: GET /test/download',
        'served for every method but not documented: /test/download',
      ]);
    } finally {
      await gateway.close();
    }
  });

  it('refuses to build a document where two resources declare one operation', () => {
    expect(() => buildOpenApiDocument([resources[0]!.openapi, resources[0]!.openapi], { version: '0' })).toThrow(/declared twice/);
  });
});

describe('the structural check can fail', () => {
  const base = () => buildOpenApiDocument(resources.map((r) => r.openapi), { version: '0.1.0' });

  it.each<[string, (doc: OpenApiDocument) => void, RegExp]>([
    ['an unresolved $ref', (d) => (d.paths['/ping']!.get!.responses['500'] = { $ref: '#/components/responses/Nope' }), /unresolved \$ref/],
    ['a duplicate operationId', (d) => (d.paths['/metrics']!.get!.operationId = 'ping'), /operationId ping also used/],
    ['an operation without responses', (d) => (d.paths['/ping']!.get!.responses = {}), /no responses/],
    ['an undeclared path parameter', (d) => (d.paths['/api/docs/{asset}']!.get!.parameters = []), /\{asset\} is not declared/],
    ['a wrong version', (d) => (d.openapi = '3.0.3'), /3\.1/],
    ['an invalid status key', (d) => (d.paths['/ping']!.get!.responses['2xx'] = { description: 'x' }), /invalid response key/],
    ['an undeclared tag', (d) => (d.paths['/ping']!.get!.tags = ['Nope']), /tag Nope/],
  ])('finds %s', (_name, breakIt, expected) => {
    const doc = base();
    expect(validateOpenApi(doc)).toEqual([]);
    breakIt(doc);
    expect(validateOpenApi(doc).join('\n')).toMatch(expected);
  });
});
