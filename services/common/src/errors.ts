import { Code, ConnectError } from '@connectrpc/connect';

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

/** Turns a domain error into a ConnectError; anything unknown becomes a bare Internal. */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof GefError) {
    const metadata = new Headers();
    if (err.reason) metadata.set(reasonHeader, err.reason);
    if (err.details) metadata.set(detailsHeader, JSON.stringify(err.details));
    return new ConnectError(err.message, err.code, metadata);
  }
  return new ConnectError('Internal error', Code.Internal);
}
