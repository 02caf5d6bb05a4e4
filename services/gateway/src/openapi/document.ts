import { sharedComponents } from './components';
import { httpMethods, type OpenApiDocument, type OpenApiResource, type TagObject } from './types';

export interface DocumentOptions {
  version: string;
}

const description = `The GEF API (Trends.Earth back end).

Conventions for every route:
- Success is HTTP 200 with \`{"data": …}\` (paginated lists add \`page\`, \`per_page\`, \`total\`); the monitoring routes answer bare objects.
- Errors are \`{"status", "detail", "error"}\` with the same HTTP status (\`Error\` schema). An unknown path is 404 \`not_found\`; a known path with another method is 405 \`method_not_allowed\` with \`Allow\`.
- A trailing slash is accepted everywhere (\`/ping/\` is \`/ping\`).
- Request bodies are JSON and may be sent with \`Content-Encoding: gzip\` or \`deflate\`; the limit applies to the bytes sent and to the inflated bytes (413 beyond either); another encoding is 415; a body that is not JSON is 400 \`Malformed JSON body\`. Unknown JSON fields are ignored.
- Responses are gzip-compressed when the client sends \`Accept-Encoding: gzip\`, except raw downloads.
- Every answer carries \`X-Request-Id\` (the client's, when sane, else a new UUID).
- Dates are UTC, \`2026-11-28T05:13:18.000000\` (\`ApiDate\`); ids are lower-case UUID strings.
- A service the gateway needs being down is 503 \`unavailable\`, never 500.
- The Trends.Earth QGIS plugin loads executions and scripts with schemas that refuse unknown keys and statuses. A request with QGIS's \`User-Agent\` (\`… QGIS/<version>/<os>\`) or \`X-TE-Client: type=qgis_plugin; …\` gets them as those schemas load them: an execution with \`id, script_id, user_id, status, progress, params, results, start_date, end_date\` (and what \`include\` asks for), \`CANCELLING\` shown as \`RUNNING\` and no results, or results that are not an object, as \`{}\`; a script with \`id, name, slug, description, status, public, user_id, created_at, updated_at, cpu_reservation, cpu_limit, memory_reservation, memory_limit\`, \`PENDING\` shown as \`BUILDING\`. Such answers carry \`Vary: User-Agent, X-TE-Client\`. Every other client gets the schemas below.`;

/**
 * Builds the OpenAPI 3.1 document from each resource's part. Two resources declaring the
 * same operation or schema is a programming error and fails at start.
 */
export function buildOpenApiDocument(resources: readonly OpenApiResource[], options: DocumentOptions): OpenApiDocument {
  const components = sharedComponents();
  const schemas = components.schemas ?? {};
  const doc: OpenApiDocument = {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    info: { title: 'GEF API', version: options.version, description, license: { name: 'MIT', identifier: 'MIT' } },
    servers: [{ url: '/', description: 'This gateway' }],
    tags: [],
    paths: {},
    components: { ...components, schemas },
    // Routes are protected unless they say otherwise (`security: []`).
    security: [{ bearerAuth: [] }],
  };
  const tags = new Map<string, TagObject>();
  for (const resource of resources) {
    const known = tags.get(resource.tag.name);
    if (!known || (!known.description && resource.tag.description)) tags.set(resource.tag.name, { ...resource.tag });
    for (const [name, schema] of Object.entries(resource.schemas ?? {})) {
      if (schemas[name]) throw new Error(`OpenAPI schema ${name} is declared twice`);
      schemas[name] = structuredClone(schema);
    }
    for (const [path, item] of Object.entries(resource.paths)) {
      const target = (doc.paths[path] ??= {});
      for (const method of httpMethods) {
        const operation = item[method];
        if (!operation) continue;
        if (target[method]) throw new Error(`OpenAPI operation ${method.toUpperCase()} ${path} is declared twice`);
        target[method] = structuredClone(operation);
      }
      if (item.parameters) target.parameters = [...(target.parameters ?? []), ...structuredClone(item.parameters)];
    }
  }
  doc.tags = [...tags.values()];
  doc.paths = Object.fromEntries(Object.entries(doc.paths).sort(([a], [b]) => a.localeCompare(b)));
  return doc;
}
