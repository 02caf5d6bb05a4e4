import { errors, jwtVerify, SignJWT } from 'jose';
import { Unauthenticated } from './errors';

/**
 * Short HS256 JWTs a service signs with a key of its own and hands to a runner (or a
 * running script) for one piece of work: `sub` names it, `scope` what the holder may do,
 * `att` which attempt (or version) it was issued for, `exp` until when. The issuing
 * service verifies them at every use; nothing else holds the key. Execution tokens
 * (`./execution-token`) and build tokens (the script service's) are made here.
 */

export interface ScopedTokenKind {
  /** `iss`: the service that signs them. */
  issuer: string;
  /** `aud`. */
  audience: string;
  /** In error messages: "execution token", "build token". */
  name: string;
  /** The configuration variable holding the key (in the message of a key too short). */
  secretName: string;
}

export interface ScopedTokenClaims {
  subject: string;
  scope: string;
  attempt: number;
  expiresAt: Date;
}

const keys = new Map<string, Uint8Array>();

function keyOf(kind: ScopedTokenKind, secret: string): Uint8Array {
  let key = keys.get(secret);
  if (!key) {
    if (secret.length < 16) throw new Error(`${kind.secretName} must be at least 16 characters`);
    key = new TextEncoder().encode(secret);
    keys.set(secret, key);
  }
  return key;
}

/** Signs a token of this kind. */
export async function signScopedToken(
  kind: ScopedTokenKind,
  secret: string,
  claims: { subject: string; scope: string; attempt: number; ttlSeconds: number },
): Promise<string> {
  return new SignJWT({ scope: claims.scope, att: claims.attempt })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.subject)
    .setIssuer(kind.issuer)
    .setAudience(kind.audience)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + Math.max(1, Math.ceil(claims.ttlSeconds)))
    .sign(keyOf(kind, secret));
}

/**
 * Verifies signature, issuer, audience, expiry and scope. Throws Unauthenticated with
 * reason `token_expired` or `invalid_token`. What the subject may still do is the
 * issuing service's check, at use.
 */
export async function verifyScopedToken(kind: ScopedTokenKind, secret: string, token: string, scopes: readonly string[]): Promise<ScopedTokenClaims> {
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, keyOf(kind, secret), {
      algorithms: ['HS256'],
      issuer: kind.issuer,
      audience: kind.audience,
      requiredClaims: ['sub', 'exp'],
    }));
  } catch (err) {
    if (err instanceof errors.JWTExpired) throw new Unauthenticated(`The ${kind.name} has expired`, 'token_expired');
    throw new Unauthenticated(`Invalid ${kind.name}`, 'invalid_token');
  }
  const scope = payload['scope'];
  const attempt = payload['att'];
  const sub = payload['sub'];
  if (typeof scope !== 'string' || !scopes.includes(scope)) {
    throw new Unauthenticated('This token may not be used here', 'invalid_token');
  }
  if (typeof sub !== 'string' || typeof attempt !== 'number' || !Number.isInteger(attempt) || attempt < 0) {
    throw new Unauthenticated(`Invalid ${kind.name}`, 'invalid_token');
  }
  return { subject: sub, scope, attempt, expiresAt: new Date(Number(payload['exp']) * 1000) };
}
