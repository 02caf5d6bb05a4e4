import { Unavailable } from '@gef/common';
import { KeycloakError, type KeycloakSettings } from './admin-client';

export interface KeycloakTokens {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  userId: string;
  sessionId: string;
}

/** Why Keycloak refused a grant. */
export type GrantFailure = 'invalid_credentials' | 'account_disabled' | 'invalid_token' | 'not_set_up';

export type GrantResult = { ok: true; tokens: KeycloakTokens } | { ok: false; failure: GrantFailure };

function decodePayload(jwt: string): Record<string, unknown> {
  const part = jwt.split('.')[1] ?? '';
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/**
 * The claims a token says it has, signature unchecked: only Keycloak can vouch for them
 * (undefined when it is not a JWT at all).
 */
export function unverifiedClaims(jwt: string): { sub?: unknown; sid?: unknown } | undefined {
  try {
    const claims = decodePayload(jwt);
    return typeof claims === 'object' && claims !== null ? claims : undefined;
  } catch {
    return undefined;
  }
}

/** The OpenID Connect token endpoint of the realm, for the API's confidential client. */
export class KeycloakTokenClient {
  constructor(private readonly settings: KeycloakSettings) {}

  private get base(): string {
    return `${this.settings.url}/realms/${encodeURIComponent(this.settings.realm)}/protocol/openid-connect`;
  }

  private async post(path: string, form: Record<string, string>): Promise<Response> {
    try {
      return await fetch(`${this.base}${path}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ client_id: this.settings.clientId, client_secret: this.settings.clientSecret, ...form }),
        signal: AbortSignal.timeout(10_000),
      });
    } catch {
      throw new Unavailable('Keycloak is unavailable', 'unavailable');
    }
  }

  private async grant(form: Record<string, string>, operation: string): Promise<GrantResult> {
    const res = await this.post('/token', form);
    if (res.ok) {
      const body = (await res.json()) as { access_token: string; refresh_token: string; expires_in: number; session_state?: string };
      const claims = decodePayload(body.access_token);
      return {
        ok: true,
        tokens: {
          accessToken: body.access_token,
          refreshToken: body.refresh_token,
          // The lifetime as issued (exp - iat); Keycloak's own expires_in may be a second short.
          expiresIn:
            typeof claims['exp'] === 'number' && typeof claims['iat'] === 'number' ? claims['exp'] - claims['iat'] : body.expires_in,
          userId: String(claims['sub'] ?? ''),
          sessionId: String(claims['sid'] ?? body.session_state ?? ''),
        },
      };
    }
    const text = await res.text();
    if (res.status === 400 || res.status === 401) {
      let description = '';
      let error = '';
      try {
        const body = JSON.parse(text) as { error?: string; error_description?: string };
        description = (body.error_description ?? '').toLowerCase();
        error = body.error ?? '';
      } catch {
        // an unreadable body is a refusal all the same
      }
      if (description.includes('disabled')) return { ok: false, failure: 'account_disabled' };
      if (description.includes('not fully set up')) return { ok: false, failure: 'not_set_up' };
      if (form['grant_type'] === 'refresh_token' || error === 'invalid_token') return { ok: false, failure: 'invalid_token' };
      return { ok: false, failure: 'invalid_credentials' };
    }
    throw new KeycloakError(res.status, operation, text);
  }

  /** Password grant. */
  login(email: string, password: string): Promise<GrantResult> {
    return this.grant({ grant_type: 'password', username: email, password, scope: 'openid' }, 'login');
  }

  /** Refresh-token grant. */
  refresh(refreshToken: string): Promise<GrantResult> {
    return this.grant({ grant_type: 'refresh_token', refresh_token: refreshToken }, 'refresh');
  }

  /** Ends the session of a refresh token; false when Keycloak refused the token. */
  async logout(refreshToken: string): Promise<boolean> {
    const res = await this.post('/logout', { refresh_token: refreshToken });
    if (res.ok) return true;
    if (res.status === 400 || res.status === 401) return false;
    throw new KeycloakError(res.status, 'logout', await res.text());
  }
}
