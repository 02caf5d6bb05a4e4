import { Code, ConnectError } from '@connectrpc/connect';
import { wellFormed } from './storable-text';

/**
 * The one error vocabulary of the platform. Domain code throws these; the server
 * interceptor turns them into ConnectError with the named code; the gateway maps codes to
 * HTTP statuses in one table.
 */
export abstract class GefError extends Error {
  abstract readonly code: Code;
  /** A short machine-readable reason, e.g. `not_found`, sent as `error` by the gateway. */
  readonly reason: string | undefined;
  /** Extra machine-readable fields for the error body (e.g. `minutes_remaining`). */
  readonly details: Record<string, string | number | boolean> | undefined;

  constructor(message: string, reason?: string, details?: Record<string, string | number | boolean>) {
    super(message);
    this.name = new.target.name;
    this.reason = reason;
    this.details = details;
  }
}

export class NotFound extends GefError {
  readonly code = Code.NotFound;
}

export class AlreadyExists extends GefError {
  readonly code = Code.AlreadyExists;
}

export class InvalidArgument extends GefError {
  readonly code = Code.InvalidArgument;
}

export class FailedPrecondition extends GefError {
  readonly code = Code.FailedPrecondition;
}

export class PermissionDenied extends GefError {
  readonly code = Code.PermissionDenied;
}

export class Unauthenticated extends GefError {
  readonly code = Code.Unauthenticated;
}

/** A conflicting change, e.g. a terminal status replaced by another (HTTP 409). */
export class Aborted extends GefError {
  readonly code = Code.Aborted;
}

/** A dependency is down (HTTP 503). */
export class Unavailable extends GefError {
  readonly code = Code.Unavailable;
}

/** Too many requests (HTTP 429). */
export class ResourceExhausted extends GefError {
  readonly code = Code.ResourceExhausted;
}

/** The metadata key carrying a GefError's reason across RPC. */
export const reasonHeader = 'gef-error-reason';
/** The metadata key carrying a GefError's details (JSON) across RPC. */
export const detailsHeader = 'gef-error-details';

/** A well-formed request the rules refuse, e.g. a weak password (HTTP 422). */
export class Unprocessable extends GefError {
  readonly code = Code.InvalidArgument;
  constructor(message: string, reason = 'unprocessable', details?: Record<string, string | number | boolean>) {
    super(message, reason, details);
  }
}

/** Reasons the gateway answers with 422 instead of 400. */
export const unprocessableReasons = new Set(['unprocessable', 'weak_password']);

/**
 * Network error codes: the peer is not there. Node's, and nodemailer's for a mail server
 * it cannot reach or that drops the connection (ECONNECTION, ESOCKET, EDNS).
 */
const networkCode = /^(ECONNREFUSED|ECONNRESET|ECONNABORTED|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ECONNECTION|ESOCKET|EDNS)$/;
/**
 * PostgreSQL SQLSTATEs of a database that is away: connection exceptions (class 08),
 * shutdowns and start-ups (57P01-57P03), too many connections (53300); and of one that gave
 * up on a statement another try may pass: a statement or idle transaction past its time
 * limit (57014, 25P03), a lock not had in time (55P03), a serialization failure or deadlock
 * (40001, 40P01).
 */
const postgresUnavailableState = /^(08[0-9A-Z]{3}|57P0[1-3]|53300|57014|25P03|55P03|40001|40P01)$/;
/** Messages of pg, knex, MikroORM and the Temporal client when their server is away. */
const unavailableText =
  /(Connection terminated|connection error and is not queryable|Client was closed and is not queryable|Transaction query already complete|server closed the connection unexpectedly|Unable to acquire a connection|socket has been ended by the other party|timeout exceeded when trying to connect|Timeout acquiring a connection|the database system is (starting up|shutting down|in recovery mode)|terminating connection due to administrator command|^14 UNAVAILABLE|^4 DEADLINE_EXCEEDED|Temporal did not answer)/i;

/** What errors carry that their classification reads. */
export interface ErrorFields {
  name?: unknown;
  code?: unknown;
  sqlState?: unknown;
  message?: unknown;
  unavailable?: unknown;
  cause?: unknown;
  previous?: unknown;
}

/** An error and its causes (`cause`, or the ORM's `previous`), each once: a cycle ends the chain. */
export function* errorChain(err: unknown): Generator<ErrorFields> {
  const seen = new Set<unknown>();
  let current: unknown = err;
  while (typeof current === 'object' && current !== null && !seen.has(current)) {
    seen.add(current);
    const e = current as ErrorFields;
    yield e;
    current = e.cause ?? e.previous;
  }
}

/**
 * True when an error (or one of its causes) says a dependency, the database or Temporal,
 * cannot be reached right now: the request may succeed once it is back (HTTP 503), it is
 * not a fault of the code (500).
 */
export function isDependencyUnavailable(err: unknown): boolean {
  for (const e of errorChain(err)) {
    // Errors of a client that knows its server failed (e.g. Keycloak answering 5xx) say so.
    if (e.unavailable === true || e.name === 'ConnectionException') return true;
    if (typeof e.code === 'string' && networkCode.test(e.code)) return true;
    for (const state of [e.code, e.sqlState]) if (typeof state === 'string' && postgresUnavailableState.test(state)) return true;
    if (typeof e.message === 'string' && unavailableText.test(e.message)) return true;
  }
  return false;
}

/**
 * Whether an error (or one of its causes) is PostgreSQL's deadlock (40P01): answered as
 * Unavailable like other statements another try may pass, but a lock-order bug of the
 * code's own, logged as an error.
 */
export function isDeadlock(err: unknown): boolean {
  for (const e of errorChain(err)) if (e.code === '40P01' || e.sqlState === '40P01') return true;
  return false;
}

/**
 * PostgreSQL data exceptions (SQLSTATE class 22) a value from the request can cause, what
 * each says to the client (never the database's own text): a list filter's pattern or
 * value the database refuses is the request's fault (400), not a failure (500).
 */
const postgresInvalidInput: Record<string, string> = {
  '22025': 'A like pattern in the request is not valid', // invalid_escape_sequence
  '22019': 'A like pattern in the request is not valid', // invalid_escape_character
  '2201B': 'A pattern in the request is not valid', // invalid_regular_expression
  '22001': 'A value in the request is too long', // string_data_right_truncation
  '22003': 'A number in the request is out of range', // numeric_value_out_of_range
  '22007': 'A date in the request is not valid', // invalid_datetime_format
  '22008': 'A date in the request is out of range', // datetime_field_overflow
  '22P02': 'A value in the request is not valid', // invalid_text_representation
  '22021': 'A value in the request holds characters that cannot be stored', // character_not_in_repertoire
  '22P05': 'A value in the request holds characters that cannot be stored', // untranslatable_character
};

/**
 * The client's message when an error (or one of its causes) is a PostgreSQL data exception
 * caused by a value of the request (`postgresInvalidInput`); undefined otherwise.
 */
export function invalidInputMessage(err: unknown): string | undefined {
  for (const e of errorChain(err)) {
    for (const state of [e.sqlState, e.code]) {
      if (typeof state === 'string' && Object.hasOwn(postgresInvalidInput, state)) return postgresInvalidInput[state];
    }
  }
  return undefined;
}

/** Header values are bytes: JSON text with every character past ASCII escaped. */
const asciiOnly = (text: string) => text.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/**
 * Turns a domain error into a ConnectError (its message well formed, see `wellFormed`); a dependency that is away becomes Unavailable,
 * a value the database refuses as invalid input InvalidArgument, anything else unknown a
 * bare Internal.
 */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) {
    const message = wellFormed(err.rawMessage);
    if (message === err.rawMessage) return err;
    const sent = new ConnectError(message, err.code, err.metadata, undefined, err.cause);
    sent.details.push(...err.details);
    return sent;
  }
  if (err instanceof GefError) {
    const metadata = new Headers();
    if (err.reason) metadata.set(reasonHeader, asciiOnly(err.reason));
    if (err.details) metadata.set(detailsHeader, asciiOnly(JSON.stringify(err.details)));
    return new ConnectError(wellFormed(err.message), err.code, metadata);
  }
  const invalid = invalidInputMessage(err);
  if (invalid !== undefined) return new ConnectError(invalid, Code.InvalidArgument, new Headers({ [reasonHeader]: 'invalid_argument' }));
  if (isDependencyUnavailable(err)) {
    const metadata = new Headers({ [reasonHeader]: 'unavailable' });
    return new ConnectError('Service unavailable; try again shortly', Code.Unavailable, metadata);
  }
  return new ConnectError('Internal error', Code.Internal);
}
