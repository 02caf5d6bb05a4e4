import zlib from 'node:zlib';
import type { Transform } from 'node:stream';
import type { NextFunction, Request, Response } from 'express';
import { jsonTextDepthExceeds, maxJsonValueDepth, unstorableText, unstorableWhat } from '@gef/common';
import { HttpError } from './http-errors';

/**
 * Request bodies: read as a stream with byte counters on both the bytes received and the
 * bytes inflated, so a gzip bomb is stopped at the limit, never inflated fully first.
 */

const inflaters: Record<string, () => Transform> = {
  gzip: () => zlib.createGunzip(),
  'x-gzip': () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
};

/**
 * Nesting deeper than this is refused before parsing (keeps every later step safe): one
 * level for the body's own object around a run's results, which, like its params (the body
 * itself), may nest `maxJsonValueDepth` levels, what every RPC hop decodes with margin. The
 * execution service refuses params one level deeper than that.
 */
export const maxJsonDepth = maxJsonValueDepth + 1;

const tooLarge = (what: string, limit: number) =>
  new HttpError(413, 'payload_too_large', `${what} exceeds the limit of ${limit} bytes`);

/** True when the request announces a body (RFC 9112: Content-Length or Transfer-Encoding). */
export function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** The inflater for a Content-Encoding header, `undefined` for identity; 415 for others. */
function inflaterFor(header: string | undefined): Transform | undefined {
  const encoding = (header ?? '').trim().toLowerCase();
  if (encoding === '' || encoding === 'identity') return undefined;
  const make = inflaters[encoding];
  if (!make) {
    const named = /^[a-z0-9._-]{1,32}$/.test(encoding) ? `: ${encoding}` : '';
    throw new HttpError(415, 'unsupported_media_type', `Unsupported Content-Encoding${named}`);
  }
  return make();
}

/**
 * Reads the whole body, inflating gzip or deflate. 413 when more than `limit` bytes arrive
 * or inflate; 415 for an unknown encoding; 400 for a corrupt compressed stream.
 */
export function readBody(req: Request, limit: number): Promise<Buffer> {
  if (!hasBody(req)) return Promise.resolve(Buffer.alloc(0));
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge('Request body', limit));
  let inflater: Transform | undefined;
  try {
    inflater = inflaterFor(req.headers['content-encoding']);
  } catch (err) {
    return Promise.reject(err);
  }

  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let bodyBytes = 0;
    let settled = false;

    const cleanup = () => {
      req.off('data', onReceived);
      req.off('end', onReceivedEnd);
      req.off('error', onRequestError);
      if (inflater) {
        inflater.off('data', onBody);
        inflater.off('end', succeed);
        inflater.off('error', onInflateError);
        inflater.on('error', () => undefined);
        inflater.destroy();
      }
    };
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      cleanup();
      // Let the rest of the body drain; the answer closes the connection.
      req.resume();
      reject(err);
    };
    function succeed() {
      if (settled) return;
      settled = true;
      cleanup();
      resolve(Buffer.concat(chunks, bodyBytes));
    }
    function onBody(chunk: Buffer) {
      bodyBytes += chunk.length;
      if (bodyBytes > limit) fail(tooLarge(inflater ? 'Inflated request body' : 'Request body', limit));
      else chunks.push(chunk);
    }
    function onReceived(chunk: Buffer) {
      received += chunk.length;
      if (received > limit) return fail(tooLarge('Request body', limit));
      if (!inflater) return onBody(chunk);
      if (!inflater.write(chunk)) {
        req.pause();
        inflater.once('drain', () => {
          if (!settled) req.resume();
        });
      }
    }
    function onReceivedEnd() {
      if (!inflater || received === 0) succeed();
      else inflater.end();
    }
    function onRequestError() {
      fail(new HttpError(400, 'invalid_argument', 'Request body could not be read'));
    }
    function onInflateError() {
      fail(new HttpError(400, 'invalid_argument', 'Malformed compressed body'));
    }

    req.on('data', onReceived);
    req.on('end', onReceivedEnd);
    req.on('error', onRequestError);
    if (inflater) {
      inflater.on('data', onBody);
      inflater.on('end', succeed);
      inflater.on('error', onInflateError);
    }
  });
}

/** `application/json` or any `+json` type; `undefined` when absent. */
function checkJsonContentType(header: string | undefined): void {
  if (header === undefined || header.trim() === '') return;
  const [type = '', ...params] = header.split(';').map((p) => p.trim().toLowerCase());
  const isJson = type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type);
  if (!isJson) throw new HttpError(415, 'unsupported_media_type', 'Content-Type must be application/json');
  for (const param of params) {
    const [name, value = ''] = param.split('=').map((s) => s.trim().replace(/^"|"$/g, ''));
    if (name === 'charset' && !['utf-8', 'utf8', 'us-ascii'].includes(value)) {
      throw new HttpError(415, 'unsupported_media_type', 'JSON bodies must be UTF-8');
    }
  }
}

const malformed = () => new HttpError(400, 'invalid_argument', 'Malformed JSON body');

const unstorable = (where: string) => new HttpError(400, 'invalid_argument', `${where} holds ${unstorableWhat}`);

/**
 * Whether a body may hold what plain parsing lets through: text no column stores (NUL or a
 * lone surrogate, which valid UTF-8 JSON can only spell as a `\\u` escape), a `__proto__`
 * key (plain or escaped), or a number beyond a double's range (one with an exponent, or 309
 * digits and more). Most bodies have none, and skip the walk over their values. One pass
 * over the text, whatever it holds.
 */
function mayHoldUnwanted(text: string): boolean {
  if (text.includes('\\u') || text.includes('__proto__')) return true;
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      if (++digits >= 309) return true;
      continue;
    }
    // An exponent: `1e99` after 210 digits is beyond a double too.
    if ((c === 0x65 || c === 0x45) && digits > 0) return true;
    if (c !== 0x2e) digits = 0;
  }
  return false;
}

/**
 * Parses a JSON body; keys named `__proto__` are dropped. A key or string holding
 * `unstorableText`, or a number beyond a double's range, is a 400, not a failure of
 * whatever would store it.
 */
export function parseJson(bytes: Buffer): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, 'invalid_argument', 'Request body is not valid UTF-8');
  }
  if (jsonTextDepthExceeds(text, maxJsonDepth)) {
    throw new HttpError(
      400,
      'invalid_argument',
      `JSON body is nested deeper than ${maxJsonDepth} levels of objects and arrays (run params and results may nest at most ${maxJsonValueDepth})`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw malformed();
  }
  if (mayHoldUnwanted(text)) checkValues(value);
  return value;
}

/** Drops `__proto__` keys and refuses unstorable text and infinite numbers, walking every value once (no recursion). */
function checkValues(root: unknown): void {
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') {
      if (unstorableText.test(value)) throw unstorable('JSON body');
    } else if (typeof value === 'number') {
      // 1e999 parses as Infinity, which no JSON column or protobuf Value can hold.
      if (!Number.isFinite(value)) throw new HttpError(400, 'invalid_argument', 'JSON body holds a number too large to represent');
    } else if (Array.isArray(value)) {
      for (const item of value) pending.push(item);
    } else if (value !== null && typeof value === 'object') {
      const object = value as Record<string, unknown>;
      // JSON.parse makes `__proto__` an own property (it sets no prototype); it goes anyway.
      if (Object.hasOwn(object, '__proto__')) delete object['__proto__'];
      for (const key of Object.keys(object)) {
        if (unstorableText.test(key)) throw unstorable('JSON body');
        pending.push(object[key]);
      }
    }
  }
}

/**
 * Reads a JSON body into `req.body`: `undefined` when there is none. Whether the value has
 * the right shape (an object, which fields) is the route's validation, a 400.
 */
export function jsonBody(limit: number) {
  return async (req: Request, _res: Response, next: NextFunction): Promise<void> => {
    if (hasBody(req)) checkJsonContentType(req.headers['content-type']);
    const bytes = await readBody(req, limit);
    req.body = bytes.length === 0 ? undefined : parseJson(bytes);
    next();
  };
}
