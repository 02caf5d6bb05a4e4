import { decodeJwt } from 'jose';
import { signScopedToken, verifyScopedToken, type ScopedTokenKind } from './scoped-token';

/**
 * Execution tokens: short HS256 JWTs signed by the execution service with
 * EXECUTION_TOKEN_SECRET, each scoped to one execution and one runner attempt (scoped
 * tokens, ./scoped-token.ts).
 *
 * - scope `execution`: the `API_TOKEN` a running script holds. The gateway accepts it
 *   beside Keycloak's tokens for exactly `PATCH /execution/<sub>` and
 *   `POST /execution/<sub>/log`; the execution service refuses it once the execution has
 *   a terminal status or a later attempt exists (it checks at every use).
 * - scope `runner`: the runner's own credential for the attempt (log batches and the
 *   outcome); never accepted by the gateway.
 */

export const executionTokenIssuer = 'gef-execution';
export const executionTokenAudience = 'gef-api';

export type ExecutionTokenScope = 'execution' | 'runner';

export interface ExecutionTokenClaims {
  /** The execution the token may act on (`sub`). */
  executionId: string;
  scope: ExecutionTokenScope;
  /** The runner attempt it was issued for (`att`). */
  attempt: number;
  expiresAt: Date;
}

export interface SignExecutionToken {
  executionId: string;
  scope: ExecutionTokenScope;
  attempt: number;
  /** Lifetime in seconds. */
  ttlSeconds: number;
}

const kind: ScopedTokenKind = {
  issuer: executionTokenIssuer,
  audience: executionTokenAudience,
  name: 'execution token',
  secretName: 'EXECUTION_TOKEN_SECRET',
};

/** Signs a token for one execution attempt. */
export function signExecutionToken(secret: string, claims: SignExecutionToken): Promise<string> {
  return signScopedToken(kind, secret, { subject: claims.executionId, scope: claims.scope, attempt: claims.attempt, ttlSeconds: claims.ttlSeconds });
}

/**
 * Verifies signature, issuer, audience, expiry and scope. Throws Unauthenticated with
 * reason `token_expired` or `invalid_token`. Whether the execution still runs is the
 * execution service's check, at use.
 */
export async function verifyExecutionToken(
  secret: string,
  token: string,
  scopes: readonly ExecutionTokenScope[] = ['execution'],
): Promise<ExecutionTokenClaims> {
  const claims = await verifyScopedToken(kind, secret, token, scopes);
  return {
    executionId: claims.subject.toLowerCase(),
    scope: claims.scope as ExecutionTokenScope,
    attempt: claims.attempt,
    expiresAt: claims.expiresAt,
  };
}

/**
 * Whether a bearer token claims to be an execution token (issuer `gef-execution`), without
 * verifying it: lets the gateway pick the verifier. Never a reason to trust it.
 */
export function looksLikeExecutionToken(token: string): boolean {
  try {
    return decodeJwt(token).iss === executionTokenIssuer;
  } catch {
    return false;
  }
}
