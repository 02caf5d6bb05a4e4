import type { Request } from 'express';
import { GefError } from '@gef/common';
import { looksLikeExecutionToken, verifyExecutionToken } from '@gef/common/execution-token';
import { HttpError } from '../http-errors';
import { Authenticator, type Principal } from './authenticator';

/**
 * Who may change an execution: a user (Keycloak token), or a running script with its
 * execution token (`API_TOKEN`, scope `execution`). Only the routes a script may call
 * (`PATCH /execution/<id>`, `POST /execution/<id>/log`) use this; everywhere else an
 * execution token is not a Keycloak token and is refused as invalid.
 *
 * The gateway checks the token's signature, expiry and scope; whether it belongs to this
 * execution and whether the run still holds it is the execution service's check, which
 * gets the raw token as `execution_token`.
 */
export type ExecutionCredential = { kind: 'user'; principal: Principal } | { kind: 'execution_token'; token: string };

const unauthorized = (error: string, message: string) =>
  new HttpError(401, error, message, {}, { 'WWW-Authenticate': `Bearer error="invalid_token"` });

/** The request's user or execution token, or a 401. */
export async function executionCredential(auth: Authenticator, secret: string, req: Request): Promise<ExecutionCredential> {
  const token = Authenticator.bearer(req);
  if (token !== undefined && looksLikeExecutionToken(token)) {
    try {
      await verifyExecutionToken(secret, token, ['execution']);
    } catch (err) {
      if (err instanceof GefError) throw unauthorized(err.reason ?? 'invalid_token', err.message);
      throw err;
    }
    return { kind: 'execution_token', token };
  }
  return { kind: 'user', principal: await auth.require(req) };
}
