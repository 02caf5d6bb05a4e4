import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '@gef/common';

declare global {
  // Express merges its Request type with this namespace.
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The request id: the client's sane `X-Request-Id`, else a fresh UUID. */
      id: string;
      /** The process logger bound to this request's id. */
      log: Logger;
    }
  }
}

/** Header names the gateway reads and writes. */
export const requestIdHeader = 'X-Request-Id';

/** Printable, short, no spaces: safe to echo and to log. */
const saneRequestId = /^[A-Za-z0-9._:@=+/-]{1,128}$/;

/** Takes the client's request id when it is sane, else makes one. */
export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && saneRequestId.test(value) ? value : randomUUID();
}

/** Gives every request an id, echoes it, and binds a child logger to it (made on first use). */
export function requestContext(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const id = requestIdFrom(req.headers['x-request-id']);
    req.id = id;
    // Made when first used: most requests log nothing, and a child logger (its bindings and
    // redaction) cost a twentieth of a cached read.
    let log: Logger | undefined;
    Object.defineProperty(req, 'log', {
      configurable: true,
      get: () => (log ??= logger.child({ reqId: id })),
      set: (value: Logger) => {
        log = value;
      },
    });
    res.setHeader(requestIdHeader, id);
    next();
  };
}

/** Call options for an RPC made on behalf of a request: its id travels along. */
export function rpcOptions(req: Request, timeoutMs?: number): { headers: Record<string, string>; timeoutMs?: number } {
  return timeoutMs === undefined
    ? { headers: { 'x-request-id': req.id } }
    : { headers: { 'x-request-id': req.id }, timeoutMs };
}
