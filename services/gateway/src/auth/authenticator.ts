import type { Request } from 'express';
import { errors as joseErrors } from 'jose';
import { HttpError } from '../http-errors';
import { KeycloakVerifier, TokenError, type KeycloakVerifierSettings } from './keycloak-verifier';
import type { RevocationCache } from './revocation-cache';

export type RoleName = 'USER' | 'ADMIN' | 'SUPERADMIN';

/** Who a request comes from, once its bearer token is verified. */
export interface UserPrincipal {
  kind: 'user';
  userId: string;
  role: RoleName;
  sessionId: string;
  /** The token's `iat` and `exp` (seconds): what a long-lived answer re-checks (stillHolds). */
  issuedAt: number;
  expiresAt: number;
}

export type Principal = UserPrincipal;

const rank: Record<RoleName, number> = { USER: 0, ADMIN: 1, SUPERADMIN: 2 };

/** The highest platform role among a token's realm roles (USER when none). */
export function platformRole(roles: readonly string[]): RoleName {
  let best: RoleName = 'USER';
  for (const r of roles) if (r in rank && rank[r as RoleName] > rank[best]) best = r as RoleName;
  return best;
}

export const isAtLeast = (role: RoleName, min: RoleName) => rank[role] >= rank[min];

const unauthorized = (error: string, message: string) =>
  new HttpError(401, error, message, {}, { 'WWW-Authenticate': `Bearer error="${error === 'authorization_required' ? 'invalid_request' : 'invalid_token'}"` });

/** The 401 of a token revoked (a logout, a role change, a deletion): at the request's check, or later while its answer streams. */
export const tokenRevoked = () => unauthorized('token_revoked', 'Token has been revoked');

/**
 * Turns the `Authorization` header into a principal: Keycloak tokens verified locally,
 * then checked against the revocations in force.
 */
export class Authenticator {
  constructor(
    private readonly verifier: KeycloakVerifier,
    private readonly revocations: RevocationCache | undefined,
  ) {}

  static fromSettings(settings: KeycloakVerifierSettings, revocations: RevocationCache | undefined): Authenticator {
    return new Authenticator(new KeycloakVerifier(settings), revocations);
  }

  /** The bearer token of a request, or undefined when there is none (no Authorization header, or an empty one). */
  static bearer(req: Request): string | undefined {
    const header = req.headers.authorization;
    if (header === undefined) return undefined;
    // Node keeps the first of repeated Authorization headers, and a proxy in front may keep
    // another: whose request it is would depend on who reads it.
    if ((req.headersDistinct['authorization']?.length ?? 0) > 1) throw unauthorized('invalid_token', 'More than one Authorization header');
    // An empty header, or "Bearer" with nothing after it, sends no token: a route open to
    // anyone serves it, others ask for one (authorization_required).
    if (/^(Bearer)?[ \t]*$/i.test(header)) return undefined;
    const m = /^Bearer[ \t]+([A-Za-z0-9._~+/=-]{1,8192})[ \t]*$/i.exec(header);
    if (!m) throw unauthorized('invalid_token', 'Malformed Authorization header: expected "Bearer <token>"');
    return m[1];
  }

  /** The caller, or a 401. */
  async require(req: Request): Promise<Principal> {
    const principal = await this.optional(req);
    if (!principal) throw unauthorized('authorization_required', 'Authorization required');
    return principal;
  }

  /** The caller when a token is sent (and valid); undefined when none is sent. */
  async optional(req: Request): Promise<Principal | undefined> {
    const token = Authenticator.bearer(req);
    if (token === undefined) return undefined;
    let claims;
    try {
      claims = await this.verifier.verify(token);
    } catch (err) {
      if (err instanceof TokenError) throw unauthorized(err.failure, err.message);
      if (err instanceof joseErrors.JWKSTimeout) throw new HttpError(503, 'unavailable', 'Keycloak is unavailable');
      // The realm's keys could not be fetched.
      throw new HttpError(503, 'unavailable', 'Token keys are unavailable');
    }
    if (this.revocations) {
      if (this.revocations.isRevoked(claims.userId, claims.sessionId, claims.issuedAt)) {
        throw tokenRevoked();
      }
      if (!this.revocations.trustworthy) throw new HttpError(503, 'unavailable', 'Token revocations are unavailable');
    }
    return { kind: 'user', userId: claims.userId, role: platformRole(claims.roles), sessionId: claims.sessionId, issuedAt: claims.issuedAt, expiresAt: claims.expiresAt };
  }

  /**
   * Whether the token a principal came with still holds now: not expired, not revoked (a
   * logout, a role change, a deletion). For answers that outlive their request's check,
   * such as an event stream.
   */
  stillHolds(principal: Principal): boolean {
    if (principal.expiresAt > 0 && principal.expiresAt * 1000 <= Date.now()) return false;
    return !this.revocations?.isRevoked(principal.userId, principal.sessionId, principal.issuedAt);
  }

  /**
   * Whether a principal verified earlier may be served again on its token alone: it still
   * holds, and revocations are followed (else a request is refused with 503, not served).
   */
  trusts(principal: Principal): boolean {
    return (this.revocations?.trustworthy ?? true) && this.stillHolds(principal);
  }
}
