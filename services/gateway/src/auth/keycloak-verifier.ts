import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';

/** What the gateway needs from a verified Keycloak access token. */
export interface AccessClaims {
  userId: string;
  /** Realm roles. */
  roles: string[];
  /** Keycloak session id (`sid`), empty when absent. */
  sessionId: string;
  /** Issued at, seconds since the epoch. */
  issuedAt: number;
  expiresAt: number;
}

/** Why a token was refused; each is a 401 with this `error` code. */
export type TokenFailure = 'invalid_token' | 'token_expired';

export class TokenError extends Error {
  constructor(
    readonly failure: TokenFailure | 'token_revoked' | 'authorization_required',
    message: string,
  ) {
    super(message);
    this.name = 'TokenError';
  }
}

/** What jose finds wrong with a token itself (its form, signature, claims, key id or algorithm). */
const tokenFaults = [
  errors.JWTClaimValidationFailed,
  errors.JWTInvalid,
  errors.JWSInvalid,
  errors.JWSSignatureVerificationFailed,
  errors.JOSEAlgNotAllowed,
  errors.JOSENotSupported,
  errors.JWKSNoMatchingKey,
  errors.JWKSMultipleMatchingKeys,
];

export interface KeycloakVerifierSettings {
  url: string;
  realm: string;
  clientId: string;
  /**
   * The `iss` tokens carry, where Keycloak names itself by a public address (its hostname
   * setting) other than `url`, which the gateway reaches it at; unset: the realm at `url`.
   */
  issuer?: string | undefined;
}

/**
 * Verifies Keycloak-issued JWTs locally against the realm's keys (fetched once, cached,
 * refetched when a token names an unknown key, so key rotation needs no restart): RS256,
 * issuer, audience or authorised party, expiry.
 */
export class KeycloakVerifier {
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;
  readonly issuer: string;
  /**
   * Tokens already verified, until they expire: a client sends the same token many times,
   * and the signature check is the costliest step. Revocation is checked on every request
   * by the caller, not cached here.
   */
  private readonly verified = new Map<string, AccessClaims>();
  private static readonly maxCached = 10_000;

  constructor(private readonly settings: KeycloakVerifierSettings) {
    const realmUrl = `${settings.url.replace(/\/$/, '')}/realms/${encodeURIComponent(settings.realm)}`;
    this.issuer = settings.issuer?.replace(/\/$/, '') ?? realmUrl;
    // The keys are fetched where the gateway reaches Keycloak, whatever name it issues under.
    this.jwks = createRemoteJWKSet(new URL(`${realmUrl}/protocol/openid-connect/certs`), {
      cooldownDuration: 5_000,
      cacheMaxAge: 10 * 60_000,
      timeoutDuration: 5_000,
    });
  }

  async verify(token: string): Promise<AccessClaims> {
    const cached = this.verified.get(token);
    if (cached) {
      if (cached.expiresAt * 1000 > Date.now() - 5_000) return cached;
      this.verified.delete(token);
      throw new TokenError('token_expired', 'Token has expired');
    }
    const claims = await this.verifyUncached(token);
    if (this.verified.size >= KeycloakVerifier.maxCached) {
      // Drop the oldest entry (Map keeps insertion order).
      const oldest = this.verified.keys().next().value;
      if (oldest !== undefined) this.verified.delete(oldest);
    }
    this.verified.set(token, claims);
    return claims;
  }

  private async verifyUncached(token: string): Promise<AccessClaims> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.jwks, {
        issuer: this.issuer,
        algorithms: ['RS256'],
        clockTolerance: 5,
      }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw new TokenError('token_expired', 'Token has expired');
      if (tokenFaults.some((fault) => err instanceof fault)) throw new TokenError('invalid_token', 'Invalid token');
      // The realm's keys could not be had (Keycloak down or answering oddly, a timeout):
      // not the token's fault, so not a 401 that would make clients drop their logins.
      throw err;
    }
    const audience = Array.isArray(payload.aud) ? payload.aud : payload.aud ? [payload.aud] : [];
    const azp = typeof payload['azp'] === 'string' ? payload['azp'] : '';
    if (!audience.includes(this.settings.clientId) && azp !== this.settings.clientId) {
      throw new TokenError('invalid_token', 'Token was not issued for this API');
    }
    if (payload['typ'] !== undefined && payload['typ'] !== 'Bearer') throw new TokenError('invalid_token', 'Not an access token');
    if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new TokenError('invalid_token', 'Token has no subject');
    const realmAccess = payload['realm_access'] as { roles?: unknown } | undefined;
    const roles = Array.isArray(realmAccess?.roles) ? realmAccess.roles.filter((r): r is string => typeof r === 'string') : [];
    return {
      userId: payload.sub.toLowerCase(),
      roles,
      sessionId: typeof payload['sid'] === 'string' ? payload['sid'] : '',
      issuedAt: payload.iat ?? 0,
      expiresAt: payload.exp ?? 0,
    };
  }
}
