import type { Request, Response } from 'express';
import { Code, ConnectError } from '@connectrpc/connect';
import { detailsHeader, GefError, reasonHeader, unprocessableReasons, wellFormed } from '@gef/common';

/**
 * The one place where failures become HTTP answers: the only Code → HTTP status table and
 * the only error body of the gateway (CONTRACT.md §1).
 */

/** The HTTP status of each Connect code. Exhaustive: a new code fails to compile here. */
export const httpStatusByCode: Readonly<Record<Code, number>> = {
  [Code.Canceled]: 500,
  [Code.Unknown]: 500,
  [Code.InvalidArgument]: 400,
  [Code.DeadlineExceeded]: 503,
  [Code.NotFound]: 404,
  // A duplicate e-mail or slug is a 400 in the contract.
  [Code.AlreadyExists]: 400,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 400,
  [Code.Aborted]: 409,
  [Code.OutOfRange]: 500,
  [Code.Unimplemented]: 501,
  [Code.Internal]: 500,
  [Code.Unavailable]: 503,
  [Code.DataLoss]: 500,
  [Code.Unauthenticated]: 401,
};

/** The `error` field of each code when no reason was given: `NotFound` → `not_found`. */
export function errorNameOf(code: Code): string {
  if (code === Code.DeadlineExceeded || code === Code.Unavailable) return 'unavailable';
  const name = Code[code] ?? 'Unknown';
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

/** The JSON body of every error answer. */
export interface ErrorBody {
  status: number;
  detail: string;
  error?: string;
  /** Only on `/auth…` routes: the same text as `detail` (older clients read these). */
  message?: string;
  msg?: string;
  [extra: string]: unknown;
}

/**
 * A failure the gateway itself decides (unknown route, body too large, bad encoding…).
 * Routes throw it; the error middleware answers it.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
    /** Extra top-level body fields, e.g. `retry_after`. */
    readonly extra: Record<string, unknown> = {},
    /** Extra response headers, e.g. `Allow` or `Retry-After`. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** How an error is answered and logged. */
export interface ErrorReply {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
  /** `error`: unexpected, logged with the error; `warn`: a dependency failed; `none`: the client's fault. */
  log: 'error' | 'warn' | 'none';
  /** Close the connection after answering (an unread body may still be arriving). */
  close: boolean;
}

const internal = (): ErrorReply => ({
  status: 500,
  body: { status: 500, detail: 'Internal error' },
  headers: {},
  log: 'error',
  close: false,
});

const unavailable = (): ErrorReply => ({
  status: 503,
  body: { status: 503, detail: 'Service unavailable', error: 'unavailable' },
  headers: { 'Retry-After': '1' },
  log: 'warn',
  close: false,
});

/** Generic texts for the HTTP errors raised by Express, Node or this gateway's plumbing. */
const httpStatusTexts: Record<number, [error: string, detail: string]> = {
  400: ['invalid_argument', 'Bad request'],
  401: ['authorization_required', 'Authorization required'],
  403: ['permission_denied', 'Permission denied'],
  404: ['not_found', 'Not found'],
  405: ['method_not_allowed', 'Method not allowed'],
  406: ['not_acceptable', 'Not acceptable'],
  408: ['request_timeout', 'Request timeout'],
  411: ['length_required', 'Length required'],
  413: ['payload_too_large', 'Payload too large'],
  414: ['uri_too_long', 'URI too long'],
  415: ['unsupported_media_type', 'Unsupported media type'],
  416: ['range_not_satisfiable', 'Range not satisfiable'],
  422: ['unprocessable', 'Unprocessable'],
  429: ['rate_limited', 'Too many requests'],
  431: ['headers_too_large', 'Request header fields too large'],
};

/** The body for a bare HTTP status (also used where no request object exists). */
export function bodyForStatus(status: number): ErrorBody {
  const [error, detail] = httpStatusTexts[status] ?? ['invalid_argument', 'Bad request'];
  return { status, detail, error };
}

/** Node system errors that mean "could not talk to the service". */
const connectionErrorCode = /^(E(CONNREFUSED|CONNRESET|CONNABORTED|PIPE|TIMEDOUT|HOSTUNREACH|NETUNREACH|NOTFOUND|AI_AGAIN)|ERR_HTTP2_.*|ERR_STREAM_(DESTROYED|PREMATURE_CLOSE))$/;

/**
 * Errors are told apart by shape, not `instanceof Error`: errors from Node's built-in fetch
 * (undici) may come from another realm (Jest's sandbox, vm contexts).
 */
function isErrorLike(value: unknown): value is { message: string; name?: unknown; code?: unknown; cause?: unknown } {
  return typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string';
}

/** True when the error, or one of its causes, is a Node network error (refused, reset…). */
export function causeChainHasConnectionError(err: unknown): boolean {
  const seen = new Set<unknown>();
  let current: unknown = err;
  while (isErrorLike(current) && !seen.has(current)) {
    seen.add(current);
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && connectionErrorCode.test(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** True when the error came back from the service rather than from the transport. */
function cameFromServer(err: ConnectError): boolean {
  return err.metadata.has('grpc-status') || err.metadata.has(reasonHeader);
}

const connectionErrorText =
  /^(http\/2 |stream closed with error code|expected open session|connection |sentinel completed early)|\b(ECONNREFUSED|ECONNRESET|ECONNABORTED|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)\b/i;

/**
 * True for errors the transport raises when a service is down, slow or went away mid-call
 * (connect-node reports some of them as Internal or Aborted): these are 503, never 500.
 */
export function isConnectionFailure(err: ConnectError): boolean {
  if (cameFromServer(err)) return false;
  if ([Code.Unavailable, Code.DeadlineExceeded, Code.Aborted, Code.Canceled].includes(err.code)) return true;
  return causeChainHasConnectionError(err) || connectionErrorText.test(err.rawMessage);
}

/** The HTTP status of a code and reason: a refused-by-the-rules InvalidArgument is 422. */
export function httpStatusOf(code: Code, reason?: string | null): number {
  if (code === Code.InvalidArgument && reason && unprocessableReasons.has(reason)) return 422;
  return httpStatusByCode[code];
}

/** Body fields an error's details may not replace. */
const reservedFields = new Set(['status', 'detail', 'error', 'message', 'msg']);

type Details = Record<string, string | number | boolean>;

function withoutReserved(extra: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(extra).filter(([key]) => !reservedFields.has(key)));
}

/** Keeps the machine-readable extras of an error (e.g. `minutes_remaining`): flat primitives only. */
function cleanDetails(details: unknown): Details {
  const out: Details = {};
  if (typeof details !== 'object' || details === null || Array.isArray(details)) return out;
  for (const [key, value] of Object.entries(details)) {
    if (reservedFields.has(key) || !/^[a-z][a-z0-9_]{0,40}$/.test(key)) continue;
    if (typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) {
      out[key] = typeof value === 'string' ? value.slice(0, 200) : value;
    }
  }
  return out;
}

/** The details a service sent along with an error (`gef-error-details`, JSON). */
function detailsFromMetadata(metadata: Headers): Details {
  const raw = metadata.get(detailsHeader);
  if (!raw || raw.length > 4096) return {};
  try {
    return cleanDetails(JSON.parse(raw));
  } catch {
    return {};
  }
}

function fromCode(code: Code, message: string, reason: string | null | undefined, details: Details = {}): ErrorReply {
  const status = httpStatusOf(code, reason);
  if (status === 500) return internal();
  if (status === 503) return unavailable();
  const detail = status === 501 ? 'Not implemented' : message || bodyForStatus(status).detail;
  const headers: Record<string, string> = {};
  const retryAfter = details['retry_after'];
  if (typeof retryAfter === 'number' && retryAfter >= 0) {
    // Whole seconds, rounded up, in the body and in the header.
    details = { ...details, retry_after: Math.ceil(retryAfter) };
    if (status === 429) headers['Retry-After'] = String(Math.ceil(retryAfter));
  }
  return {
    status,
    body: { status, detail, error: reason || errorNameOf(code), ...details },
    headers,
    log: 'none',
    close: false,
  };
}

/** Decides the answer to any thrown value. Never exposes stack traces, SQL or addresses. */
export function errorReply(err: unknown): ErrorReply {
  if (err instanceof HttpError) {
    if (err.status >= 500 && err.status !== 503) return internal();
    return {
      status: err.status,
      body: { status: err.status, detail: err.message, error: err.error, ...withoutReserved(err.extra) },
      headers: err.headers,
      log: err.status === 503 ? 'warn' : 'none',
      close: err.status === 413,
    };
  }
  if (err instanceof GefError) return fromCode(err.code, err.message, err.reason, cleanDetails(err.details));
  if (err instanceof ConnectError) {
    if (isConnectionFailure(err)) return unavailable();
    return fromCode(err.code, err.rawMessage, err.metadata.get(reasonHeader), detailsFromMetadata(err.metadata));
  }
  // A dependency reached directly (Keycloak over fetch, PostgreSQL) that cannot be reached.
  if (causeChainHasConnectionError(err)) return unavailable();
  // Errors raised by Express, its router or Node's HTTP layer carry a 4xx status
  // (http-errors style), e.g. an undecodable `%ff` in a path parameter.
  if (err instanceof URIError) {
    return { status: 400, body: { status: 400, detail: 'Malformed percent-encoding in the URL', error: 'invalid_argument' }, headers: {}, log: 'none', close: false };
  }
  if (isErrorLike(err)) {
    const status = (err as { status?: unknown; statusCode?: unknown }).status ?? (err as { statusCode?: unknown }).statusCode;
    if (typeof status === 'number' && Number.isInteger(status) && status >= 400 && status < 500) {
      return { status, body: bodyForStatus(status), headers: {}, log: 'none', close: status === 413 };
    }
  }
  return internal();
}

/** `/auth`, `/auth/…`: the login routes whose clients read `message` and `msg`. */
export function isAuthPath(path: string): boolean {
  return /^\/auth(\/|$)/i.test(path);
}

/** Writes the error answer for a request, logging it with the request id. */
export function sendError(req: Request, res: Response, err: unknown): void {
  const reply = errorReply(err);
  if (reply.log === 'error') req.log.error({ err }, 'unhandled error');
  else if (reply.log === 'warn') req.log.warn({ err: describeForLog(err) }, 'dependency unavailable');
  if (res.headersSent) {
    // Too late for a clean answer (a stream broke halfway): end the connection.
    res.destroy();
    return;
  }
  // A message may quote a request's text cut short: never half a surrogate pair in JSON.
  const body: ErrorBody = { ...reply.body, detail: wellFormed(reply.body.detail) };
  if (isAuthPath(req.path)) {
    body.message = body.detail;
    body.msg = body.detail;
  }
  for (const [name, value] of Object.entries(reply.headers)) res.setHeader(name, value);
  // A body still arriving is not read: close rather than drain it.
  const announcesBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (reply.close || (announcesBody && !req.complete)) res.setHeader('Connection', 'close');
  res.status(reply.status).json(body);
}

function describeForLog(err: unknown): string {
  if (err instanceof ConnectError) return `${Code[err.code] ?? err.code}: ${err.rawMessage}`;
  return isErrorLike(err) ? err.message : String(err);
}
