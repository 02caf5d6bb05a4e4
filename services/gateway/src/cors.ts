import type { NextFunction, Request, Response } from 'express';

/** Request headers a browser may send cross-origin. */
const allowedHeaders = ['Authorization', 'Content-Type', 'Content-Encoding', 'X-Request-Id', 'Last-Event-ID'];
/** Response headers a browser script may read. */
const exposedHeaders = ['X-Request-Id', 'Retry-After', 'Content-Disposition'];
const allowedMethods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * CORS from an allow-list of origins (`CORS_ORIGINS`). `*` allows any origin only when it
 * is configured. No cookies are used, so credentials are never allowed.
 */
export function cors(origins: readonly string[]) {
  const anyOrigin = origins.includes('*');
  const allowed = new Set(origins.filter((o) => o !== '*').map((o) => o.replace(/\/+$/, '').toLowerCase()));

  return (req: Request, res: Response, next: NextFunction): void => {
    const origin = req.headers.origin;
    const preflight = req.method === 'OPTIONS' && origin !== undefined && req.headers['access-control-request-method'] !== undefined;
    if (origin !== undefined) {
      res.append('Vary', 'Origin');
      if (anyOrigin || allowed.has(origin.toLowerCase())) {
        res.setHeader('Access-Control-Allow-Origin', anyOrigin ? '*' : origin);
        if (preflight) {
          res.setHeader('Access-Control-Allow-Methods', allowedMethods.join(', '));
          res.setHeader('Access-Control-Allow-Headers', allowedHeaders.join(', '));
          res.setHeader('Access-Control-Max-Age', '600');
        } else {
          res.setHeader('Access-Control-Expose-Headers', exposedHeaders.join(', '));
        }
      }
    }
    if (preflight) {
      // Answered here for every path; a browser refuses it when no Allow-Origin came back.
      res.status(204).end();
      return;
    }
    next();
  };
}
