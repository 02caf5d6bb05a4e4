import type { IncomingMessage, ServerResponse } from 'node:http';
import type client from 'prom-client';
import { sharedCounter } from '@gef/common';
import type { Request, Response } from 'express';
import type { Principal } from '../auth/authenticator';
import { acceptsGzip, compressionThreshold, onCompressed } from '../compression';
import type { RequestTiming } from '../http-metrics';
import { requestIdFrom, requestIdHeader } from '../request-context';
import type { ReadCache } from './read-cache';

/**
 * Whole answers of hot reads (`GET /api/v1/execution/<id>`, `GET /api/v1/user/me`, the
 * execution lists), given again before the Express app sees the request: a private HTTP
 * cache in the gateway.
 *
 * A route keeps an answer it made from a read cache's value (`keep`). The answer is served
 * again (`serve`) only to a request that would get the very same bytes from the route:
 * - the same method (GET), URL (query included) and `Authorization` header, and the same
 *   values of every header the answer varies by (its `Vary`, and `Origin` always), and
 *   alike in whether the route compresses it (gzip taken, the answer big enough): the
 *   compressed answer is kept as sent, apart from the plain one;
 * - the token still holds (not expired, not revoked, revocations followed);
 * - every value it was made from is still the read cache's copy (`ReadCache.holds`), so
 *   whatever drops that copy (a change, another process's change, a lost change stream,
 *   its age) drops the answer with it;
 * - nothing the route would answer otherwise: no conditional headers (a 304), no body.
 * Anything else goes to the app, which may keep its answer in turn. Only the request id
 * (`X-Request-Id`) and what Node adds (`Date`, `Connection`) differ from the route's answer.
 */

/**
 * One value an answer was made from, as a check: whether it is still `cache`'s very copy
 * of `key` (`ReadCache.holds`). The value is held weakly: once its read cache lets it go,
 * nothing else keeps it, and the answer is good no more.
 */
export type AnswerSource = (asServed: boolean) => boolean;

export function answerSource<V extends object>(cache: ReadCache<V>, key: string, variant: string, value: V): AnswerSource {
  const ref = new WeakRef(value);
  return (asServed) => {
    const held = ref.deref();
    return held !== undefined && cache.holds(key, variant, held, asServed);
  };
}

interface Answer {
  /** The request headers the answer varies by (lower case), and their values when it was made. */
  vary: [name: string, value: string | undefined][];
  /** Whether it is the route's answer compressed (for clients that take gzip, when big enough). */
  gzip: boolean;
  /** The length of the route's answer before any compression. */
  plainLength: number;
  /** The answer's headers as the route set them, names as written, without the request id. */
  headers: string[];
  body: Buffer;
  principal: Principal;
  sources: AnswerSource[];
  /** The route template, for the access log and metrics. */
  route: string;
  /** What it holds: its body, key and headers, and its bookkeeping (`answerOverhead`). */
  weight: number;
}

/** What an answer weighs beyond its body, key and headers. */
const answerOverhead = 256;

export interface AnswerCacheOptions {
  /** Most answers kept (the least recently used go first). */
  maxEntries: number;
  /** Most bytes of answers kept: bodies, keys (URL and token) and headers. */
  maxBytes: number;
  /** Whether an answer's caller may still be served without verifying its token again. */
  trusts: (principal: Principal) => boolean;
  timing: RequestTiming;
  registry?: client.Registry;
  /**
   * How often, at most, storing an answer first lets go of every answer that can no longer
   * be served (`sweepEveryMs`, 15 s without it). Those go at their next request anyway, but
   * most never get one: their value changed or aged out of its read cache, their token
   * expired. Without the sweep they stayed until pushed out at the bounds, and a gateway's
   * memory grew to them under any steady load.
   */
  sweepEveryMs?: number;
  /** The clock, in milliseconds (`Date.now` without it). */
  now?: () => number;
}

/** How often storing sweeps answers that can no longer be served, by default. */
const sweepEveryMs = 15_000;

/** Request headers that change what a route answers, whatever its `Vary` says (CORS adds `Vary: Origin` only when one is sent). */
const alwaysVaries = ['origin'];

/** Request headers after which the route might answer otherwise (a 304, a body to read). */
const declines = ['if-none-match', 'if-modified-since', 'content-length', 'transfer-encoding'];

/** Most variants of one key kept (one caller's clients, e.g. the plugin and a browser). */
const maxVariants = 8;

export class AnswerCache {
  /** By method, URL and `Authorization`, least recently used first; each key holds its variants. */
  private readonly entries = new Map<string, Answer[]>();
  private bytes = 0;
  private count = 0;
  private sweptAt = 0;
  private readonly served: client.Counter<'cache' | 'result'> | undefined;

  constructor(private readonly options: AnswerCacheOptions) {
    if (options.registry) {
      this.served = sharedCounter(options.registry, 'gef_gateway_cache_lookups_total', 'Read-cache lookups by cache and result (hit, miss, bypass)', ['cache', 'result'] as const);
    }
  }

  /** How many answers are held. */
  get size(): number {
    return this.count;
  }

  /** Bytes of answers held: bodies, keys and headers, and their bookkeeping. */
  get heldBytes(): number {
    return this.bytes;
  }

  /**
   * Keeps the answer `res` is about to send, made for `principal` from `sources`, when it
   * goes out whole, uncompressed, with status 200. Call it right before the route sends.
   */
  keep(req: Request, res: Response, principal: Principal, sources: AnswerSource[]): void {
    if (req.method !== 'GET') return;
    const end = res.end;
    const url = req.originalUrl;
    const authorization = req.headers.authorization;
    if (authorization === undefined) return;
    const key = `${url}\n${authorization}`;
    const keep = (sent: Buffer, plainLength: number) => {
      // Never servable: made from what its read cache did not keep (off, not following
      // changes, or a change overtook the load), or for a URL only the app reads.
      if (url[0] !== '/' || !sources.every((stillHeld) => stillHeld(false))) return;
      // A small body is often a slice of a larger shared block, which it would keep whole.
      const body = sent.byteLength === sent.buffer.byteLength ? sent : ownCopy(sent);
      const headers = headersOf(res);
      this.store(key, {
        vary: varyNames(res).map((name) => [name, headerValue(req, name)]),
        gzip: gzipWanted(plainLength, req),
        plainLength,
        headers,
        body,
        principal,
        sources,
        route: typeof res.locals['route'] === 'string' ? (res.locals['route'] as string) : '',
        weight: body.length + key.length + headers.reduce((n, h) => n + h.length, 0) + answerOverhead,
      });
    };
    res.end = ((...args: Parameters<Response['end']>) => {
      res.end = end;
      const [chunk, encoding] = args as unknown[];
      const body = typeof chunk === 'string' ? Buffer.from(chunk, (typeof encoding === 'string' ? encoding : 'utf8') as BufferEncoding) : Buffer.isBuffer(chunk) ? chunk : undefined;
      // Compressed (later: gzip is asynchronous) or sent as it is, now.
      if (body) onCompressed(res, (zipped) => res.statusCode === 200 && keep(zipped, body.length));
      const result = end.apply(res, args);
      if (body && res.statusCode === 200 && res.headersSent && res.getHeader('Content-Encoding') === undefined) keep(body, body.length);
      return result;
    }) as Response['end'];
  }

  /** Answers `req` from memory when it may be; false leaves it untouched, for the app. */
  serve(req: IncomingMessage, res: ServerResponse): boolean {
    if (this.count === 0 || req.method !== 'GET') return false;
    const authorization = req.headers.authorization;
    // Origin-form only (`/path?query`): the app reads an absolute-form URL its own way.
    if (authorization === undefined || req.url?.[0] !== '/') return false;
    for (const name of declines) if (req.headers[name] !== undefined) return false;
    if (repeats(req, 'authorization')) return false;
    const key = `${req.url}\n${authorization}`;
    const variants = this.entries.get(key);
    const answer = variants?.find((a) => a.vary.every(([name, value]) => headerValue(req, name) === value) && a.gzip === gzipWanted(a.plainLength, req));
    if (!variants || !answer) return false;
    // A token that no longer holds never will again (expired, or revoked), and what changed stays changed.
    if (!servable(answer, this.options.trusts, true)) {
      this.forget(key, answer);
      return false;
    }
    // Most recently used last.
    this.entries.delete(key);
    this.entries.set(key, variants);
    const id = requestIdFrom(req.headers['x-request-id']);
    const url = req.url;
    this.options.timing.track(res, { method: 'GET', id, path: () => pathOf(url), route: () => answer.route });
    this.served?.inc({ cache: 'answer', result: 'hit' });
    res.writeHead(200, [requestIdHeader, id, ...answer.headers]);
    res.end(answer.body);
    return true;
  }

  /** Drops every answer. */
  clear(): void {
    this.entries.clear();
    this.bytes = 0;
    this.count = 0;
  }

  private store(key: string, answer: Answer): void {
    if (answer.weight > this.options.maxBytes) return;
    const now = this.options.now?.() ?? Date.now();
    if (now - this.sweptAt >= (this.options.sweepEveryMs ?? sweepEveryMs)) {
      this.sweptAt = now;
      this.sweep();
    }
    const same = this.entries.get(key)?.find((a) => sameVariant(a, answer));
    if (same) this.forget(key, same);
    if ((this.entries.get(key)?.length ?? 0) >= maxVariants) this.forget(key, this.entries.get(key)![0]!);
    const variants = this.entries.get(key) ?? [];
    // Most recently used last.
    this.entries.delete(key);
    this.entries.set(key, [...variants, answer]);
    this.bytes += answer.weight;
    this.count++;
    while (this.count > this.options.maxEntries || this.bytes > this.options.maxBytes) {
      const [oldest, held] = this.entries.entries().next().value ?? [];
      if (oldest === undefined || held === undefined) break;
      this.forget(oldest, held[0]!);
    }
  }

  /** Lets go of every answer that can no longer be served: its token no longer holds, or what it was made from changed. */
  private sweep(): void {
    for (const [key, variants] of this.entries) {
      for (const answer of variants) {
        if (!servable(answer, this.options.trusts, false)) this.forget(key, answer);
      }
    }
  }

  private forget(key: string, answer: Answer): void {
    const variants = this.entries.get(key);
    if (!variants?.includes(answer)) return;
    const left = variants.filter((a) => a !== answer);
    if (left.length === 0) this.entries.delete(key);
    else this.entries.set(key, left);
    this.bytes -= answer.weight;
    this.count--;
  }
}

/** The request headers an answer varies by: its `Vary` (but `Accept-Encoding`, which `serve` weighs itself), and `Origin`. */
function varyNames(res: Response): string[] {
  const names = new Set(alwaysVaries);
  const vary = res.getHeader('Vary');
  for (const part of (Array.isArray(vary) ? vary.join(',') : String(vary ?? '')).split(',')) {
    const name = part.trim().toLowerCase();
    if (name !== '' && name !== 'accept-encoding') names.add(name);
  }
  return [...names];
}

/** A request header's value as the routes read it (Node joins or drops repeats its own way). */
function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join('\n') : value;
}

/** Whether a header comes more than once (the routes refuse repeated `Authorization`). */
function repeats(req: IncomingMessage, name: string): boolean {
  let seen = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.length === name.length && req.rawHeaders[i]!.toLowerCase() === name && ++seen > 1) return true;
  }
  return false;
}

/** The answer's headers as set, names as written, as a flat list, without the request id. */
function headersOf(res: ServerResponse): string[] {
  const flat: string[] = [];
  // Node has it on every outgoing message; its types declare it on requests only.
  for (const name of (res as ServerResponse & { getRawHeaderNames(): string[] }).getRawHeaderNames()) {
    if (name.toLowerCase() === requestIdHeader.toLowerCase()) continue;
    const value = res.getHeader(name);
    for (const v of Array.isArray(value) ? value : [value]) flat.push(name, String(v));
  }
  return flat;
}

/** Whether two answers of one key are for the same values of the same headers. */
const sameVariant = (a: Answer, b: Answer): boolean => a.gzip === b.gzip && a.vary.length === b.vary.length && a.vary.every(([name, value], i) => b.vary[i]![0] === name && b.vary[i]![1] === value);

/** Bytes of their own, outside Node's shared pool. */
function ownCopy(bytes: Buffer): Buffer {
  const own = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(own);
  return own;
}

/** Whether an answer may still be served: its token holds and what it was made from is unchanged (counted as a hit when `asServed`). */
const servable = (answer: Answer, trusts: (principal: Principal) => boolean, asServed: boolean): boolean =>
  trusts(answer.principal) && answer.sources.every((stillHeld) => stillHeld(asServed));

/** Whether the route compresses an answer this long for this request (`compressResponses`). */
const gzipWanted = (plainLength: number, req: IncomingMessage): boolean => plainLength >= compressionThreshold && acceptsGzip(req.headers['accept-encoding']);

const pathOf = (url: string): string => {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
};
