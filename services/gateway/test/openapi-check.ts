import type { Express } from 'express';
import { toOpenApiPath } from '../src/routes/mount';
import { httpMethods, type OpenApiDocument, type OperationObject, type ParameterObject, type ReferenceObject } from '../src/openapi/types';

/** What Express's router holds (router 2.x), read without its private types. */
interface LayerLike {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  slash?: boolean;
  name?: string;
}

/**
 * Walks the app's router: every `METHOD /openapi/path` a route answers, the paths of
 * method-less (`all`) routes, and middleware mounted below `/` (which would serve paths
 * no route declares).
 */
export function servedRoutes(app: Express): { operations: Set<string>; allPaths: Set<string>; mountedMiddleware: string[] } {
  const stack = (app.router as unknown as { stack: LayerLike[] }).stack;
  const operations = new Set<string>();
  const allPaths = new Set<string>();
  const mountedMiddleware: string[] = [];
  for (const layer of stack) {
    if (!layer.route) {
      if (layer.slash !== true) mountedMiddleware.push(layer.name ?? '<anonymous>');
      continue;
    }
    const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
    for (const expressPath of paths) {
      const path = toOpenApiPath(expressPath);
      for (const [method, on] of Object.entries(layer.route.methods)) {
        if (!on) continue;
        if (method === '_all') allPaths.add(path);
        else operations.add(`${method.toUpperCase()} ${path}`);
      }
    }
  }
  return { operations, allPaths, mountedMiddleware };
}

/** Every `METHOD /path` the document declares. */
export function documentedOperations(doc: OpenApiDocument): Set<string> {
  const out = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of httpMethods) if (item[method]) out.add(`${method.toUpperCase()} ${path}`);
  }
  return out;
}

/** The disagreements between what the app serves and what the document says. */
export function compareWithDocument(app: Express, doc: OpenApiDocument): string[] {
  const served = servedRoutes(app);
  const documented = documentedOperations(doc);
  const problems: string[] = [];
  for (const op of served.operations) if (!documented.has(op)) problems.push(`served but not documented: ${op}`);
  for (const op of documented) if (!served.operations.has(op)) problems.push(`documented but not served: ${op}`);
  for (const path of served.allPaths) if (!(path in doc.paths)) problems.push(`served for every method but not documented: ${path}`);
  for (const name of served.mountedMiddleware) problems.push(`middleware mounted on a sub-path: ${name}`);
  return problems;
}

const isRef = (v: unknown): v is ReferenceObject => typeof v === 'object' && v !== null && typeof (v as ReferenceObject).$ref === 'string';

/** Resolves a local `#/…` JSON pointer. */
export function resolvePointer(doc: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof node !== 'object' || node === null || !Object.prototype.hasOwnProperty.call(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

function deref<T>(doc: OpenApiDocument, value: T | ReferenceObject): T | undefined {
  let current: unknown = value;
  for (let i = 0; i < 10 && isRef(current); i++) current = resolvePointer(doc, current.$ref);
  return current as T | undefined;
}

const jsonSchemaTypes = new Set(['string', 'number', 'integer', 'boolean', 'object', 'array', 'null']);

/**
 * A structural check of an OpenAPI 3.1 document, without a validator package: the
 * version, every `$ref` resolves, every operation has an id (unique), a summary and
 * responses with valid status keys and descriptions, path parameters match the template,
 * tags and security schemes are declared, schema types are JSON Schema types.
 */
export function validateOpenApi(doc: OpenApiDocument): string[] {
  const problems: string[] = [];
  if (!/^3\.1\.\d+$/.test(doc.openapi)) problems.push(`openapi must be 3.1.x, is ${doc.openapi}`);
  if (!doc.info?.title || !doc.info?.version) problems.push('info.title and info.version are required');
  if (typeof doc.paths !== 'object') problems.push('paths is required');

  // Every $ref, anywhere.
  const walk = (node: unknown, at: string) => {
    if (Array.isArray(node)) node.forEach((v, i) => walk(v, `${at}/${i}`));
    else if (typeof node === 'object' && node !== null) {
      for (const [key, value] of Object.entries(node)) {
        if (key === '$ref') {
          if (typeof value !== 'string' || resolvePointer(doc, value) === undefined) problems.push(`unresolved $ref ${String(value)} at ${at}`);
        } else if (key === 'type' && at.includes('chema')) {
          const types = Array.isArray(value) ? value : [value];
          for (const t of types) if (typeof t === 'string' && !jsonSchemaTypes.has(t)) problems.push(`invalid schema type ${t} at ${at}`);
        }
        walk(value, `${at}/${key}`);
      }
    }
  };
  walk(doc, '#');

  const tags = new Set((doc.tags ?? []).map((t) => t.name));
  const schemes = new Set(Object.keys(doc.components?.securitySchemes ?? {}));
  const ids = new Map<string, string>();
  for (const requirement of doc.security ?? []) {
    for (const name of Object.keys(requirement)) if (!schemes.has(name)) problems.push(`unknown security scheme ${name}`);
  }
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    if (!path.startsWith('/')) problems.push(`path ${path} must start with /`);
    const templateParams = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
    for (const method of httpMethods) {
      const op = item[method] as OperationObject | undefined;
      if (!op) continue;
      const where = `${method.toUpperCase()} ${path}`;
      if (!op.operationId) problems.push(`${where}: no operationId`);
      else if (ids.has(op.operationId)) problems.push(`${where}: operationId ${op.operationId} also used by ${ids.get(op.operationId)}`);
      else ids.set(op.operationId, where);
      if (!op.summary) problems.push(`${where}: no summary`);
      for (const tag of op.tags ?? []) if (!tags.has(tag)) problems.push(`${where}: tag ${tag} is not declared`);
      for (const requirement of op.security ?? []) {
        for (const name of Object.keys(requirement)) if (!schemes.has(name)) problems.push(`${where}: unknown security scheme ${name}`);
      }
      const responses = Object.entries(op.responses ?? {});
      if (responses.length === 0) problems.push(`${where}: no responses`);
      if (!responses.some(([status]) => /^2/.test(status))) problems.push(`${where}: no success response`);
      for (const [status, response] of responses) {
        if (!/^([1-5]\d\d|[1-5]XX|default)$/.test(status)) problems.push(`${where}: invalid response key ${status}`);
        const resolved = deref(doc, response);
        if (!resolved || typeof resolved.description !== 'string') problems.push(`${where} ${status}: response needs a description`);
      }
      const params = [...(item.parameters ?? []), ...(op.parameters ?? [])]
        .map((p) => deref<ParameterObject>(doc, p))
        .filter((p): p is ParameterObject => p !== undefined);
      const seen = new Set<string>();
      for (const p of params) {
        const key = `${p.in}:${p.name}`;
        if (seen.has(key)) problems.push(`${where}: parameter ${key} declared twice`);
        seen.add(key);
        if (!['query', 'header', 'path', 'cookie'].includes(p.in)) problems.push(`${where}: parameter ${p.name} has invalid in ${p.in}`);
        if (p.in === 'path' && p.required !== true) problems.push(`${where}: path parameter ${p.name} must be required`);
        if (p.in === 'path' && !templateParams.includes(p.name)) problems.push(`${where}: path parameter ${p.name} is not in the path`);
      }
      for (const name of templateParams) {
        if (!params.some((p) => p.in === 'path' && p.name === name)) problems.push(`${where}: path parameter {${name}} is not declared`);
      }
    }
  }
  return problems;
}
