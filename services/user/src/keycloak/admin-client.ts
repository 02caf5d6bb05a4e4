import { Unavailable, type Logger } from '@gef/common';
import type { BruteForceSettings, BruteForceStatus } from '../domain/lockout';

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

/** A change made through Keycloak's admin API or console, as its admin events record it. */
export interface KeycloakAdminEvent {
  id?: string;
  /** Epoch milliseconds. */
  time: number;
  operationType: 'CREATE' | 'UPDATE' | 'DELETE' | 'ACTION' | string;
  resourceType: string;
  /** E.g. `users/<id>/role-mappings/realm`. */
  resourcePath?: string;
  /** The JSON sent with the change (admin events "include representation"). */
  representation?: string;
  authDetails?: { realmId?: string; clientId?: string; userId?: string };
}

/** Raised when Keycloak answers with an unexpected status. */
export class KeycloakError extends Error {
  /** Keycloak itself failed or is overloaded (e.g. its database is down): a 503, not a 500. */
  readonly unavailable: boolean;

  constructor(
    readonly status: number,
    readonly operation: string,
    readonly body: string,
  ) {
    super(`Keycloak ${operation} failed with HTTP ${status}`);
    this.name = 'KeycloakError';
    this.unavailable = status >= 500 || status === 429;
  }
}

const requestTimeoutMs = 10_000;

/** A realm or client role as the admin API lists it (brief representation). */
interface ListedRole extends KeycloakRole {
  composite?: boolean;
  clientRole?: boolean;
  /** The realm's id, or the client's id for a client role. */
  containerId?: string;
}

/** How many reads of one sweep (every client's roles, every composite's parts) are in flight at once. */
const sweepConcurrency = 8;

/** `fn` over every item, at most `sweepConcurrency` at a time; the results in the items' order. */
async function inParallel<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(sweepConcurrency, items.length) }, worker));
  return results;
}

/**
 * Keycloak's admin REST API, called with the API client's service account. The access
 * token is cached until shortly before it expires.
 */
export class KeycloakAdminClient {
  private token: { value: string; expiresAt: number } | undefined;
  private tokenRequest: Promise<string> | undefined;
  /** Keycloak refused the realm's clients at the last read of the role holders. */
  private clientsRefused = false;

  constructor(
    private readonly settings: KeycloakSettings,
    private readonly logger?: Logger,
  ) {}

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

  /** Checks that Keycloak answers for the realm and our client credentials work. */
  async ping(): Promise<void> {
    const res = await this.fetch(`${this.realmBase}/.well-known/openid-configuration`, {});
    if (!res.ok) throw new KeycloakError(res.status, 'realm discovery', '');
    await res.arrayBuffer();
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
  async createUser(input: { email: string; password?: string; enabled?: boolean }): Promise<string> {
    const res = await this.admin(
      '/users',
      {
        method: 'POST',
        body: JSON.stringify({
          username: input.email,
          email: input.email,
          enabled: input.enabled ?? true,
          emailVerified: true,
          credentials: input.password !== undefined ? [{ type: 'password', value: input.password, temporary: false }] : [],
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

  /** Whether any user is mapped directly to a realm role (one member asked for; groups and composites not counted). */
  async realmRoleHasDirectMember(name: string): Promise<boolean> {
    const res = await this.admin(`/roles/${encodeURIComponent(name)}/users?first=0&max=1&briefRepresentation=true`, {}, 'list role members');
    if (!res.ok) throw new KeycloakError(res.status, 'list role members', await res.text());
    return ((await res.json()) as unknown[]).length > 0;
  }

  /** The realm roles mapped to a user directly (not through groups, not expanded from composites). */
  async getUserDirectRealmRoles(id: string): Promise<KeycloakRole[]> {
    const res = await this.admin(`/users/${encodeURIComponent(id)}/role-mappings/realm`, {}, 'get user direct roles');
    if (res.status === 404) return [];
    if (!res.ok) throw new KeycloakError(res.status, 'get user direct roles', await res.text());
    return (await res.json()) as KeycloakRole[];
  }

  /** The realm roles a user holds in effect: mapped directly, through groups or through composite roles. */
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

  async removeUserRealmRoles(id: string, roles: KeycloakRole[]): Promise<void> {
    if (roles.length === 0) return;
    const res = await this.admin(
      `/users/${encodeURIComponent(id)}/role-mappings/realm`,
      { method: 'DELETE', body: JSON.stringify(roles) },
      'remove roles',
    );
    if (!res.ok && res.status !== 404) throw new KeycloakError(res.status, 'remove roles', await res.text());
  }

  /** Changes a user's name, e-mail or enabled flag. */
  async updateUser(id: string, changes: { firstName?: string; email?: string; enabled?: boolean }): Promise<void> {
    const res = await this.admin(`/users/${encodeURIComponent(id)}`, { method: 'PUT', body: JSON.stringify(changes) }, 'update user');
    if (!res.ok) throw new KeycloakError(res.status, 'update user', await res.text());
  }

  /**
   * Sets a user's password. Resolves to the policy violation Keycloak reports, if any.
   */
  async setPassword(id: string, password: string): Promise<{ ok: true } | { ok: false; reason: string }> {
    const res = await this.admin(
      `/users/${encodeURIComponent(id)}/reset-password`,
      { method: 'PUT', body: JSON.stringify({ type: 'password', value: password, temporary: false }) },
      'set password',
    );
    if (res.ok) return { ok: true };
    const text = await res.text();
    if (res.status === 400) {
      let reason = 'Password does not satisfy the password policy';
      try {
        const body = JSON.parse(text) as { error_description?: string; errorMessage?: string };
        reason = body.error_description ?? body.errorMessage ?? reason;
      } catch {
        // keep the generic reason
      }
      return { ok: false, reason };
    }
    throw new KeycloakError(res.status, 'set password', text);
  }

  /** Ends every session of a user. */
  async logoutUser(id: string): Promise<void> {
    const res = await this.admin(`/users/${encodeURIComponent(id)}/logout`, { method: 'POST' }, 'log out user');
    if (!res.ok && res.status !== 404) throw new KeycloakError(res.status, 'log out user', await res.text());
  }

  /** The user's open sessions. */
  async userSessions(id: string): Promise<{ id: string; start: number; lastAccess: number }[]> {
    const res = await this.admin(`/users/${encodeURIComponent(id)}/sessions`, {}, 'list sessions');
    if (res.status === 404) return [];
    if (!res.ok) throw new KeycloakError(res.status, 'list sessions', await res.text());
    return (await res.json()) as { id: string; start: number; lastAccess: number }[];
  }

  /** Ends one session. */
  async deleteSession(sessionId: string): Promise<void> {
    const res = await this.admin(`/sessions/${encodeURIComponent(sessionId)}`, { method: 'DELETE' }, 'end session');
    if (!res.ok && res.status !== 404) throw new KeycloakError(res.status, 'end session', await res.text());
  }

  /** Brute-force detection state of a user. */
  async bruteForceStatus(id: string): Promise<BruteForceStatus> {
    const res = await this.admin(`/attack-detection/brute-force/users/${encodeURIComponent(id)}`, {}, 'brute-force status');
    if (!res.ok) throw new KeycloakError(res.status, 'brute-force status', await res.text());
    return (await res.json()) as BruteForceStatus;
  }

  /** Clears a user's brute-force lockout. */
  async clearBruteForce(id: string): Promise<void> {
    const res = await this.admin(`/attack-detection/brute-force/users/${encodeURIComponent(id)}`, { method: 'DELETE' }, 'clear lockout');
    if (!res.ok && res.status !== 404) throw new KeycloakError(res.status, 'clear lockout', await res.text());
  }

  /** The realm's representation (the fields `T` names). */
  private async realm<T>(): Promise<T> {
    const res = await this.admin('', {}, 'get realm');
    if (!res.ok) throw new KeycloakError(res.status, 'get realm', await res.text());
    return (await res.json()) as T;
  }

  /** The realm's brute-force settings. */
  async bruteForceSettings(): Promise<BruteForceSettings> {
    const realm = await this.realm<{ waitIncrementSeconds?: number; maxFailureWaitSeconds?: number; failureFactor?: number }>();
    return {
      waitIncrementSeconds: realm.waitIncrementSeconds ?? 900,
      maxFailureWaitSeconds: realm.maxFailureWaitSeconds ?? 900,
      failureFactor: realm.failureFactor ?? 5,
    };
  }

  /**
   * The longest an access token of the realm lives, in seconds: the realm's access-token
   * lifespan, or a client's own override (`access.token.lifespan`) when longer.
   */
  async longestAccessTokenLifespan(): Promise<number> {
    const realm = await this.realm<{ accessTokenLifespan?: number }>();
    let longest = realm.accessTokenLifespan ?? 0;
    let clients: { attributes?: Record<string, string> }[] = [];
    try {
      clients = await this.paged('/clients?briefRepresentation=false', 'list clients');
    } catch (err) {
      // Without realm-management view-clients, the realm's own lifespan is what is known.
      if (!(err instanceof KeycloakError && err.status === 403)) throw err;
    }
    for (const client of clients) {
      const own = Number(client.attributes?.['access.token.lifespan']);
      if (Number.isFinite(own) && own > longest) longest = own;
    }
    return longest;
  }

  /** The id of the service account this client acts as (the author of the API's own admin events). */
  async serviceAccountUserId(): Promise<string> {
    const payload = (await this.accessToken()).split('.')[1] ?? '';
    const sub = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown }).sub;
    if (typeof sub !== 'string' || sub === '') throw new KeycloakError(200, 'service-account login (no subject)', '');
    return sub;
  }

  /**
   * Makes the realm record admin events with their representations; true when it had to.
   * Needs the service account's realm-management `manage-events` (a 403 otherwise).
   */
  async ensureAdminEvents(): Promise<boolean> {
    const res = await this.admin('/events/config', {}, 'get events settings');
    if (!res.ok) throw new KeycloakError(res.status, 'get events settings', await res.text());
    const config = (await res.json()) as Record<string, unknown>;
    if (config['adminEventsEnabled'] === true && config['adminEventsDetailsEnabled'] === true) return false;
    const put = await this.admin(
      '/events/config',
      { method: 'PUT', body: JSON.stringify({ ...config, adminEventsEnabled: true, adminEventsDetailsEnabled: true }) },
      'enable admin events',
    );
    if (!put.ok) throw new KeycloakError(put.status, 'enable admin events', await put.text());
    return true;
  }

  /**
   * Admin events from `from` (epoch ms, inclusive), oldest first, of the given resource
   * types and operations (none given: all).
   */
  async adminEvents(query: {
    from: number;
    first: number;
    max: number;
    resourceTypes: readonly string[];
    operationTypes: readonly string[];
  }): Promise<KeycloakAdminEvent[]> {
    const params = new URLSearchParams({
      dateFrom: String(Math.max(0, Math.floor(query.from))),
      first: String(query.first),
      max: String(query.max),
      direction: 'asc',
    });
    for (const type of query.resourceTypes) params.append('resourceTypes', type);
    for (const type of query.operationTypes) params.append('operationTypes', type);
    const res = await this.admin(`/admin-events?${params.toString()}`, {}, 'list admin events');
    if (!res.ok) throw new KeycloakError(res.status, 'list admin events', await res.text());
    return (await res.json()) as KeycloakAdminEvent[];
  }

  /** Every page of a list the admin API pages with `first` and `max`. */
  private async paged<T>(path: string, operation: string, pageSize = 500): Promise<T[]> {
    const all: T[] = [];
    const sep = path.includes('?') ? '&' : '?';
    for (let first = 0; ; first += pageSize) {
      const res = await this.admin(`${path}${sep}first=${first}&max=${pageSize}`, {}, operation);
      // Removed meanwhile (a group or role deleted while it was read): nothing holds it.
      if (res.status === 404) return all;
      if (!res.ok) throw new KeycloakError(res.status, operation, await res.text());
      const page = (await res.json()) as T[];
      all.push(...page);
      if (page.length < pageSize) return all;
    }
  }

  /** Ids of the members of a group and of every group below it (they inherit its roles). */
  async groupMemberIds(groupId: string, seen = new Set<string>()): Promise<Set<string>> {
    const ids = new Set<string>();
    if (seen.has(groupId)) return ids;
    seen.add(groupId);
    const group = encodeURIComponent(groupId);
    const members = await this.paged<KeycloakUser>(`/groups/${group}/members?briefRepresentation=true`, 'list group members');
    for (const u of members) ids.add(u.id);
    const children = await this.paged<{ id: string }>(`/groups/${group}/children?briefRepresentation=true`, 'list subgroups', 100);
    for (const child of children) for (const id of await this.groupMemberIds(child.id, seen)) ids.add(id);
    return ids;
  }

  /**
   * Every client role of the realm. Needs the service account's realm-management
   * `view-clients`: without it (a 403) there are none to count, and it says so in the log.
   */
  private async allClientRoles(): Promise<ListedRole[]> {
    let clients: { id: string }[];
    try {
      clients = await this.paged<{ id: string }>('/clients', 'list clients', 100);
    } catch (err) {
      if (!(err instanceof KeycloakError && err.status === 403)) throw err;
      if (!this.clientsRefused) {
        this.logger?.error(
          'cannot read the Keycloak realm\'s clients: the API client\'s service account lacks realm-management "view-clients". ' +
            'Grant it; until then a role granted through a client role (one that includes ADMIN or SUPERADMIN) does not count here, ' +
            'and changing such a client role in the Keycloak console does not revoke tokens',
        );
      }
      this.clientsRefused = true;
      return [];
    }
    if (this.clientsRefused) this.logger?.info('the Keycloak realm\'s clients are read again: client roles count');
    this.clientsRefused = false;
    const roles = await inParallel(clients, (c) =>
      this.paged<ListedRole>(`/clients/${encodeURIComponent(c.id)}/roles?briefRepresentation=true`, 'list client roles'),
    );
    return roles.flat();
  }

  /**
   * Who holds each of the given realm roles in effect: mapped to the role itself, to a
   * composite role that includes it at any depth (realm roles and client roles alike: a
   * client role may include a realm role), or to a group holding any of them, directly or
   * through a parent group. What Keycloak puts in their tokens, for every user at once.
   *
   * With `ignoringDirect`, users mapped directly to those realm roles do not count for those
   * mappings: the holders are those who would still hold each role were those mappings
   * removed (through a group, or a composite role mapped to them otherwise).
   */
  async roleHolders(names: readonly string[], options: { ignoringDirect?: readonly string[] } = {}): Promise<Map<string, Set<string>>> {
    const realmRoles = await this.paged<ListedRole>('/roles?briefRepresentation=true', 'list roles');
    const clientRoles = await this.allClientRoles();
    // For each role (by id), the composite roles, realm or client, that include it directly.
    const includedBy = new Map<string, ListedRole[]>();
    const composites = [...realmRoles, ...clientRoles].filter((r) => r.composite);
    const parts = await inParallel(composites, (c) =>
      this.paged<ListedRole>(`/roles-by-id/${encodeURIComponent(c.id)}/composites`, 'list composite roles'),
    );
    composites.forEach((composite, i) => {
      for (const part of parts[i]!) includedBy.set(part.id, [...(includedBy.get(part.id) ?? []), composite]);
    });
    const mapped = new Map<string, Promise<{ users: Set<string>; viaGroups: Set<string> }>>();
    const groupMembers = new Map<string, Promise<Set<string>>>();
    /** Users mapped to the role itself, and members of a group holding it. */
    const mappedTo = (role: ListedRole): Promise<{ users: Set<string>; viaGroups: Set<string> }> => {
      let found = mapped.get(role.id);
      if (!found) {
        found = (async () => {
          const name = encodeURIComponent(role.name);
          const path = role.clientRole && role.containerId ? `/clients/${encodeURIComponent(role.containerId)}/roles/${name}` : `/roles/${name}`;
          const users = await this.paged<KeycloakUser>(`${path}/users?briefRepresentation=true`, 'list role members');
          const viaGroups = new Set<string>();
          const groups = await this.paged<{ id: string }>(`${path}/groups?briefRepresentation=true`, 'list role groups');
          for (const g of groups) {
            let members = groupMembers.get(g.id);
            if (!members) groupMembers.set(g.id, (members = this.groupMemberIds(g.id)));
            for (const id of await members) viaGroups.add(id);
          }
          return { users: new Set(users.map((u) => u.id)), viaGroups };
        })();
        mapped.set(role.id, found);
      }
      return found;
    };
    const result = new Map<string, Set<string>>();
    for (const name of names) {
      const holders = new Set<string>();
      result.set(name, holders);
      const target = realmRoles.find((r) => r.name === name);
      if (!target) continue;
      // The role and every composite that includes it, however deep.
      const granting = new Map([[target.id, target]]);
      const queue = [target.id];
      while (queue.length > 0) {
        for (const parent of includedBy.get(queue.shift()!) ?? []) {
          if (!granting.has(parent.id)) {
            granting.set(parent.id, parent);
            queue.push(parent.id);
          }
        }
      }
      const roles = [...granting.values()];
      const found = await inParallel(roles, mappedTo);
      found.forEach(({ users, viaGroups }, i) => {
        const role = roles[i]!;
        const direct = !role.clientRole && options.ignoringDirect?.includes(role.name) ? [] : users;
        for (const id of direct) holders.add(id);
        for (const id of viaGroups) holders.add(id);
      });
    }
    return result;
  }
}
