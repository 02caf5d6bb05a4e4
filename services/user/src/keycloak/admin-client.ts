import { Unavailable } from '@gef/common';

export interface KeycloakSettings {
  url: string;
  realm: string;
  clientId: string;
  clientSecret: string;
}

export interface KeycloakUser {
  id: string;
  username: string;
  email?: string;
  enabled: boolean;
  emailVerified?: boolean;
  firstName?: string;
  createdTimestamp?: number;
}

export interface KeycloakRole {
  id: string;
  name: string;
}

/** Raised when Keycloak answers with an unexpected status. */
export class KeycloakError extends Error {
  constructor(
    readonly status: number,
    readonly operation: string,
    readonly body: string,
  ) {
    super(`Keycloak ${operation} failed with HTTP ${status}`);
    this.name = 'KeycloakError';
  }
}

const requestTimeoutMs = 10_000;

/**
 * Keycloak's admin REST API, called with the API client's service account. The access
 * token is cached until shortly before it expires.
 */
export class KeycloakAdminClient {
  private token: { value: string; expiresAt: number } | undefined;
  private tokenRequest: Promise<string> | undefined;

  constructor(private readonly settings: KeycloakSettings) {}

  private get realmBase(): string {
    return `${this.settings.url}/realms/${encodeURIComponent(this.settings.realm)}`;
  }

  private get adminBase(): string {
    return `${this.settings.url}/admin/realms/${encodeURIComponent(this.settings.realm)}`;
  }

  private async fetch(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, { ...init, signal: AbortSignal.timeout(requestTimeoutMs) });
    } catch {
      throw new Unavailable('Keycloak is unavailable', 'unavailable');
    }
  }

  /** A service-account access token, fetched once and reused until near expiry. */
  async accessToken(): Promise<string> {
    if (this.token && this.token.expiresAt > Date.now() + 10_000) return this.token.value;
    this.tokenRequest ??= this.fetchToken().finally(() => {
      this.tokenRequest = undefined;
    });
    return this.tokenRequest;
  }

  private async fetchToken(): Promise<string> {
    const res = await this.fetch(`${this.realmBase}/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: this.settings.clientId,
        client_secret: this.settings.clientSecret,
      }),
    });
    if (!res.ok) throw new KeycloakError(res.status, 'service-account login', await res.text());
    const body = (await res.json()) as { access_token: string; expires_in: number };
    this.token = { value: body.access_token, expiresAt: Date.now() + body.expires_in * 1000 };
    return body.access_token;
  }

  private async admin(path: string, init: RequestInit = {}, operation = path): Promise<Response> {
    const send = async () =>
      this.fetch(`${this.adminBase}${path}`, {
        ...init,
        headers: {
          Authorization: `Bearer ${await this.accessToken()}`,
          ...(init.body ? { 'Content-Type': 'application/json' } : {}),
          ...(init.headers ?? {}),
        },
      });
    let res = await send();
    if (res.status === 401) {
      // The cached token was revoked or the realm keys rotated: fetch a new one once.
      this.token = undefined;
      res = await send();
    }
    if (res.status >= 500) throw new KeycloakError(res.status, operation, await res.text());
    return res;
  }

  /** Checks that Keycloak answers and our client credentials work. */
  async ping(): Promise<void> {
    this.token = undefined;
    await this.accessToken();
  }

  async findUserByEmail(email: string): Promise<KeycloakUser | undefined> {
    const res = await this.admin(
      `/users?email=${encodeURIComponent(email)}&exact=true&briefRepresentation=true`,
      {},
      'find user',
    );
    if (!res.ok) throw new KeycloakError(res.status, 'find user', await res.text());
    const users = (await res.json()) as KeycloakUser[];
    return users.find((u) => u.email?.toLowerCase() === email.toLowerCase());
  }

  async getUser(id: string): Promise<KeycloakUser | undefined> {
    const res = await this.admin(`/users/${encodeURIComponent(id)}`, {}, 'get user');
    if (res.status === 404) return undefined;
    if (!res.ok) throw new KeycloakError(res.status, 'get user', await res.text());
    return (await res.json()) as KeycloakUser;
  }

  /** Creates a user and returns its id. */
  async createUser(input: { email: string; name: string; password?: string; enabled?: boolean }): Promise<string> {
    const res = await this.admin(
      '/users',
      {
        method: 'POST',
        body: JSON.stringify({
          username: input.email,
          email: input.email,
          firstName: input.name,
          enabled: input.enabled ?? true,
          emailVerified: true,
          credentials: input.password ? [{ type: 'password', value: input.password, temporary: false }] : [],
        }),
      },
      'create user',
    );
    if (res.status !== 201) throw new KeycloakError(res.status, 'create user', await res.text());
    const location = res.headers.get('location') ?? '';
    const id = location.split('/').pop();
    if (!id) throw new KeycloakError(res.status, 'create user (no id)', '');
    return id;
  }

  /** Deletes a user; false when there was none. */
  async deleteUser(id: string): Promise<boolean> {
    const res = await this.admin(`/users/${encodeURIComponent(id)}`, { method: 'DELETE' }, 'delete user');
    if (res.status === 404) return false;
    if (!res.ok) throw new KeycloakError(res.status, 'delete user', await res.text());
    return true;
  }

  async getRealmRole(name: string): Promise<KeycloakRole> {
    const res = await this.admin(`/roles/${encodeURIComponent(name)}`, {}, 'get role');
    if (!res.ok) throw new KeycloakError(res.status, 'get role', await res.text());
    return (await res.json()) as KeycloakRole;
  }

  /** The realm roles mapped directly to a user. */
  async getUserRealmRoles(id: string): Promise<KeycloakRole[]> {
    const res = await this.admin(`/users/${encodeURIComponent(id)}/role-mappings/realm/composite`, {}, 'get user roles');
    if (res.status === 404) return [];
    if (!res.ok) throw new KeycloakError(res.status, 'get user roles', await res.text());
    return (await res.json()) as KeycloakRole[];
  }

  async addUserRealmRoles(id: string, roles: KeycloakRole[]): Promise<void> {
    const res = await this.admin(
      `/users/${encodeURIComponent(id)}/role-mappings/realm`,
      { method: 'POST', body: JSON.stringify(roles) },
      'assign roles',
    );
    if (!res.ok) throw new KeycloakError(res.status, 'assign roles', await res.text());
  }

  /** Ids of the users holding a realm role (directly). */
  async usersInRole(name: string): Promise<Set<string>> {
    const ids = new Set<string>();
    for (let first = 0; ; first += 500) {
      const res = await this.admin(
        `/roles/${encodeURIComponent(name)}/users?first=${first}&max=500&briefRepresentation=true`,
        {},
        'list role members',
      );
      if (!res.ok) throw new KeycloakError(res.status, 'list role members', await res.text());
      const page = (await res.json()) as KeycloakUser[];
      for (const u of page) ids.add(u.id);
      if (page.length < 500) return ids;
    }
  }
}
