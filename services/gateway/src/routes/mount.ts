import type { NextFunction, Request, Response, Router } from 'express';
import { unstorableText } from '@gef/common';
import { jsonBody } from '../body';
import { skipCompression } from '../compression';
import { HttpError } from '../http-errors';
import { setRouteTemplate } from '../http-metrics';
import type { RouteDef } from './types';

const paramSegment = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

/** `/api/v1/script/{script}/run` → `/api/v1/script/:script/run`. */
export function toExpressPath(template: string): string {
  return template
    .split('/')
    .map((segment) => {
      const param = paramSegment.exec(segment);
      if (param) return `:${param[1]}`;
      if (/[{}:*?()]/.test(segment)) throw new Error(`Unsupported route segment "${segment}" in ${template}`);
      return segment;
    })
    .join('/');
}

/** `/api/v1/script/:script/run` → `/api/v1/script/{script}/run`. */
export function toOpenApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}

/**
 * Orders paths so a fixed segment is tried before a parameter in the same place
 * (`/execution/user` before `/execution/{execution}`), whatever order resources list them.
 */
export function compareRoutePaths(a: string, b: string): number {
  const as = a.split('/');
  const bs = b.split('/');
  for (let i = 0; i < Math.min(as.length, bs.length); i++) {
    const aParam = paramSegment.test(as[i]!);
    const bParam = paramSegment.test(bs[i]!);
    if (aParam !== bParam) return aParam ? 1 : -1;
    if (!aParam && as[i] !== bs[i]) return as[i]! < bs[i]! ? -1 : 1;
  }
  return as.length - bs.length;
}

export interface MountOptions {
  /** BODY_LIMIT_BYTES: JSON bodies, compressed and inflated. */
  bodyLimit: number;
}

function groupByPath(routes: readonly RouteDef[]): Map<string, RouteDef[]> {
  const groups = new Map<string, RouteDef[]>();
  for (const route of routes) {
    const group = groups.get(route.path) ?? [];
    if (group.some((r) => r.method === route.method)) {
      throw new Error(`Route ${route.method.toUpperCase()} ${route.path} is declared twice`);
    }
    group.push(route);
    groups.set(route.path, group);
  }
  return new Map([...groups.entries()].sort(([a], [b]) => compareRoutePaths(a, b)));
}

/** Registers every route of the table on the router. */
export function mountRoutes(router: Router, routes: readonly RouteDef[], options: MountOptions): void {
  for (const [path, defs] of groupByPath(routes)) {
    const route = router.route(toExpressPath(path));
    for (const def of defs) {
      const tag = (req: Request, res: Response, next: NextFunction) => {
        setRouteTemplate(res, def.path);
        res.locals['operationId'] = def.operationId;
        if (def.compress === false) skipCompression(res);
        // An id, slug or e-mail holding what no text column can (NUL) names nothing: a 404
        // here, before a service hands it to its database.
        if (Object.values(req.params).some((v) => typeof v === 'string' && unstorableText.test(v))) {
          next(new HttpError(404, 'not_found', 'Not found'));
          return;
        }
        next();
      };
      const body = def.body === 'json' ? [jsonBody(Math.min(def.bodyLimit ?? Infinity, options.bodyLimit))] : [];
      route[def.method](tag, ...body, def.handler);
    }
  }
}

/** The value of `Allow` for a set of declared methods. */
function allowHeader(methods: Iterable<string>): string {
  const set = new Set([...methods].map((m) => m.toUpperCase()));
  if (set.has('GET')) set.add('HEAD');
  set.add('OPTIONS');
  const order = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
  return order.filter((m) => set.has(m)).join(', ');
}

/**
 * After every route: a known path with another method is 405 (OPTIONS: 204 with `Allow`);
 * anything else is 404. Requests reach this only when no route answered.
 */
export function mountFallbacks(router: Router, routes: readonly RouteDef[]): void {
  for (const [path, defs] of groupByPath(routes)) {
    router.all(toExpressPath(path), (_req: Request, res: Response, next: NextFunction) => {
      // The most specific template that matches says what the path allows (groups come most
      // specific first): `/execution/user` allows GET, whatever `/execution/{execution}` does.
      if (!res.locals['allow']) res.locals['allow'] = new Set(defs.map((def) => def.method));
      if (typeof res.locals['route'] !== 'string') setRouteTemplate(res, path);
      next();
    });
  }
  router.use((req: Request, res: Response) => {
    const allowed = res.locals['allow'] as Set<string> | undefined;
    if (!allowed) throw new HttpError(404, 'not_found', 'Not found');
    const allow = allowHeader(allowed);
    res.setHeader('Allow', allow);
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    throw new HttpError(405, 'method_not_allowed', `Method ${req.method} is not allowed here`, {}, { Allow: allow });
  });
}
