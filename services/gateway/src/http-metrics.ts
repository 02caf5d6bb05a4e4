import type { ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import client from 'prom-client';
import type { Logger } from '@gef/common';

/** The route template of a request (`/api/v1/script/{script}`), set when a route matches. */
export function setRouteTemplate(res: Response, template: string): void {
  res.locals['route'] = template;
}

/** Label for requests that matched no route, so unknown paths cannot grow the label set. */
export const unmatchedRoute = 'unmatched';

const knownMethods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Routes polled by probes and scrapers: logged at debug level only. */
const quietRoutes = new Set(['/ping', '/api-health', '/metrics']);

/** A path segment holding an e-mail address, as typed or percent-encoded. */
const emailSegment = /^[^/]*(@|%40)[^/]*$/i;

/**
 * The path as the access log keeps it: a segment naming a user by e-mail address
 * (`/api/v1/user/<address>/recover-password`) becomes `{email}`, so the log holds no
 * addresses; ids and slugs stay.
 */
export function loggedPath(path: string): string {
  if (!path.includes('@') && !/%40/i.test(path)) return path;
  return path
    .split('/')
    .map((segment) => (emailSegment.test(segment) ? '{email}' : segment))
    .join('/');
}

/** What the access log and the duration metric say of one request, read when it ends. */
export interface TimedRequest {
  method: string;
  /** The request id (`X-Request-Id`). */
  id: string;
  /** The path without its query. */
  path: () => string;
  /** The route template, or `unmatchedRoute`. */
  route: () => string;
}

/**
 * Times requests into `gef_http_request_duration_seconds{method, route, status}` and
 * writes one access-log line per request (with its `reqId`), when its level is on: for the
 * Express app (`middleware`) and for answers given before it (`track`).
 */
export class RequestTiming {
  private readonly duration: client.Histogram<'method' | 'route' | 'status'>;

  constructor(
    registry: client.Registry,
    private readonly logger: Logger,
  ) {
    this.duration = new client.Histogram({
      name: 'gef_http_request_duration_seconds',
      help: 'HTTP request handling time by method, route template and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
  }

  /** Times `res` from now until it finishes, or its client goes away. */
  track(res: ServerResponse, request: TimedRequest): void {
    const started = process.hrtime.bigint();
    let recorded = false;
    const record = () => {
      if (recorded) return;
      recorded = true;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = request.route();
      const method = knownMethods.has(request.method) ? request.method : 'OTHER';
      // A client that went away before the answer finished is counted as 499.
      const status = res.writableFinished ? String(res.statusCode) : '499';
      this.duration.observe({ method, route, status }, seconds);
      // Through the process logger: the request's child logger (its bindings and redaction)
      // would be made for every request only to write this line, or to drop it.
      const level = quietRoutes.has(route) ? 'debug' : 'info';
      if (!this.logger.isLevelEnabled(level)) return;
      this.logger[level]({ reqId: request.id, method, route, path: loggedPath(request.path()), status: Number(status), ms: Math.round(seconds * 1e4) / 10 }, 'request');
    };
    res.once('finish', record);
    res.once('close', record);
  }

  /** Times every request the Express app serves. */
  middleware() {
    return (req: Request, res: Response, next: NextFunction): void => {
      this.track(res, {
        method: req.method,
        id: req.id,
        path: () => req.path,
        route: () => (typeof res.locals['route'] === 'string' ? (res.locals['route'] as string) : unmatchedRoute),
      });
      next();
    };
  }
}
