import zlib from 'node:zlib';
import type { NextFunction, Request, Response } from 'express';

/**
 * Compresses whole responses (`res.json`, `res.send`) with gzip when the client asks.
 * Streamed responses (anything that calls `res.write`, e.g. archive downloads or event
 * streams) pass through untouched, and a route can opt out with `skipCompression(res)`.
 */

/** Bodies smaller than this are sent as they are. */
export const compressionThreshold = 1024;

/**
 * gzip's fastest level: on API JSON it compresses almost as well as the default (a page of
 * 5,000 log lines, 789 KB: 44.8 KB at level 1, 43.9 KB at 6) in a quarter of the time
 * (1.4 ms against 5.8 ms), CPU every other request on the machine shares.
 */
const gzipOptions: zlib.ZlibOptions = { level: zlib.constants.Z_BEST_SPEED };

const compressibleType = /^(text\/|application\/(json|javascript|xml|problem\+json|[a-z0-9.+-]+\+(json|xml))|image\/svg\+xml)/i;

/** Marks a response as never compressed (raw downloads). */
export function skipCompression(res: Response): void {
  res.locals['skipCompression'] = true;
}

/** True when `Accept-Encoding` accepts gzip (explicitly or through `*`) with q > 0. */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  let gzip: number | undefined;
  let star: number | undefined;
  for (const part of header.split(',')) {
    const [token = '', ...params] = part.trim().toLowerCase().split(';');
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    const weight = Number.isFinite(q) ? q : 0;
    if (token.trim() === 'gzip' || token.trim() === 'x-gzip') gzip = weight;
    else if (token.trim() === '*') star = weight;
  }
  return (gzip ?? star ?? 0) > 0;
}

type EndCallback = () => void;
type End = Response['end'];

/** Who wants the compressed body of a response once it is sent (`onCompressed`). */
const compressedListeners = new WeakMap<Response, (zipped: Buffer) => void>();

/** Calls `listener` with the body `res` sends, should this middleware send it compressed. */
export function onCompressed(res: Response, listener: (zipped: Buffer) => void): void {
  compressedListeners.set(res, listener);
}

function addVary(res: Response, field: string): void {
  const current = res.getHeader('Vary');
  const values = String(current ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
  if (!values.some((v) => v.toLowerCase() === field.toLowerCase() || v === '*')) {
    res.setHeader('Vary', [...values, field].join(', '));
  }
}

export function compressResponses() {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (req.method === 'HEAD') return next();
    const gzip = acceptsGzip(req.headers['accept-encoding']);
    const originalWrite = res.write;
    const originalEnd = res.end;
    const restore = () => {
      res.write = originalWrite;
      res.end = originalEnd;
    };

    res.write = function (this: Response, ...args: unknown[]) {
      // A streamed response: never buffered, never compressed here.
      restore();
      return (originalWrite as (...a: unknown[]) => boolean).apply(this, args);
    } as Response['write'];

    res.end = function (this: Response, ...args: unknown[]) {
      restore();
      let [chunk, encoding, callback] = args as [unknown, unknown, unknown];
      if (typeof chunk === 'function') [chunk, encoding, callback] = [undefined, undefined, chunk];
      if (typeof encoding === 'function') [encoding, callback] = [undefined, encoding];
      const cb = callback as EndCallback | undefined;
      const passThrough = () => (originalEnd as (...a: unknown[]) => Response).call(this, ...args);

      const type = String(res.getHeader('Content-Type') ?? '');
      const eligible =
        !res.headersSent &&
        !res.locals['skipCompression'] &&
        res.statusCode >= 200 &&
        res.statusCode !== 204 &&
        res.statusCode !== 304 &&
        !res.getHeader('Content-Encoding') &&
        !/\bno-transform\b/i.test(String(res.getHeader('Cache-Control') ?? '')) &&
        compressibleType.test(type);
      if (!eligible) return passThrough();
      addVary(res, 'Accept-Encoding');
      if (!gzip || chunk === undefined || chunk === null) return passThrough();
      const body =
        typeof chunk === 'string'
          ? Buffer.from(chunk, (encoding as BufferEncoding | undefined) ?? 'utf8')
          : Buffer.isBuffer(chunk)
            ? chunk
            : chunk instanceof Uint8Array
              ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
              : undefined;
      if (!body || body.length < compressionThreshold) return passThrough();

      zlib.gzip(body, gzipOptions, (err, zipped) => {
        if (err || res.headersSent || res.destroyed) {
          (originalEnd as (...a: unknown[]) => Response).call(res, body, cb);
          return;
        }
        res.setHeader('Content-Encoding', 'gzip');
        res.setHeader('Content-Length', zipped.length);
        const etag = res.getHeader('ETag');
        if (typeof etag === 'string' && !etag.startsWith('W/')) res.setHeader('ETag', `W/${etag}`);
        (originalEnd as (...a: unknown[]) => Response).call(res, zipped, cb);
        compressedListeners.get(res)?.(zipped);
      });
      return this;
    } as End;

    next();
  };
}
