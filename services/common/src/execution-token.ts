import { decodeJwt, errors, jwtVerify, SignJWT } from 'jose';
import { Unauthenticated } from './errors';

/**
 * Execution tokens: short HS256 JWTs signed by the execution service with
 * EXECUTION_TOKEN_SECRET, each scoped to one execution and one runner attempt.
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

const keys = new Map<string, Uint8Array>();

function keyOf(secret: string): Uint8Array {
  let key = keys.get(secret);
  if (!key) {
    if (secret.length < 16) throw new Error('EXECUTION_TOKEN_SECRET must be at least 16 characters');
    key = new TextEncoder().encode(secret);
    keys.set(secret, key);
  }
  return key;
}

/** Signs a token for one execution attempt. */
export async function signExecutionToken(secret: string, claims: SignExecutionToken): Promise<string> {
  return new SignJWT({ scope: claims.scope, att: claims.attempt })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.executionId)
    .setIssuer(executionTokenIssuer)
    .setAudience(executionTokenAudience)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + Math.max(1, Math.ceil(claims.ttlSeconds)))
    .sign(keyOf(secret));
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
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, keyOf(secret), {
      algorithms: ['HS256'],
      issuer: executionTokenIssuer,
      audience: executionTokenAudience,
      requiredClaims: ['sub', 'exp'],
    }));
  } catch (err) {
    if (err instanceof errors.JWTExpired) throw new Unauthenticated('The execution token has expired', 'token_expired');
    throw new Unauthenticated('Invalid execution token', 'invalid_token');
  }
  const scope = payload['scope'];
  const attempt = payload['att'];
  const sub = payload['sub'];
  if (typeof scope !== 'string' || !(scopes as readonly string[]).includes(scope)) {
    throw new Unauthenticated('This token may not be used here', 'invalid_token');
  }
  if (typeof sub !== 'string' || typeof attempt !== 'number' || !Number.isInteger(attempt) || attempt < 0) {
    throw new Unauthenticated('Invalid execution token', 'invalid_token');
  }
  return {
    executionId: sub.toLowerCase(),
    scope: scope as ExecutionTokenScope,
    attempt,
    expiresAt: new Date(Number(payload['exp']) * 1000),
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
