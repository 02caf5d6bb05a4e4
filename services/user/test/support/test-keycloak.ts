import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { databaseUrl, embeddedPostgresVersion, freeStackPorts, KEYCLOAK_VERSION, startStack, type Stack } from '@gef/deploy';
import type { KeycloakSettings } from '../../src/keycloak/admin-client';

const repoRoot = resolve(__dirname, '..', '..', '..', '..');

/**
 * The end-to-end harness's PostgreSQL template for this realm file, when it was built
 * (test/harness/postgres-template.ts, same key): Keycloak has imported the realm there
 * already and starts ~20 s sooner. Without one, Keycloak imports the realm itself.
 */
function postgresTemplate(cacheDir: string): string | undefined {
  const hash = createHash('sha256');
  hash.update('v1');
  hash.update(KEYCLOAK_VERSION);
  hash.update(readFileSync(join(repoRoot, 'deploy', 'keycloak', 'gef-realm.json')));
  hash.update(embeddedPostgresVersion(repoRoot));
  const postgres = join(cacheDir, 'e2e-template', hash.digest('hex').slice(0, 16), 'postgres');
  return existsSync(join(postgres, 'PG_VERSION')) ? postgres : undefined;
}

/**
 * The realm-management roles the user service's service account needs (beyond those it
 * had before): `view-clients` to read client roles and who holds them.
 */
const neededGrants = ['view-clients'];

export interface TestKeycloak {
  stack: Stack;
  /** The API client's settings (the service account the user service uses). */
  settings: KeycloakSettings;
  /** The user service's database on the same PostgreSQL. */
  databaseUrl: string;
  /**
   * The realm-management roles the user service needs that the API client's service
   * account lacked in the realm as the launcher set it up: granted here for the tests
   * (empty when the realm gives them).
   */
  missingGrants: string[];
  /** Grants (true) or takes back (false) one realm-management role of the API client's service account. */
  setServiceAccountRole(name: string, held: boolean): Promise<void>;
  /**
   * An operator in the admin console: the master realm's admin calling the gef realm's
   * admin API (`path` below /admin/realms/gef). Resolves to the parsed body, if any.
   */
  console<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  /** Creates a user as the operator would, with a password; resolves to the id. */
  createUser(email: string, password: string): Promise<string>;
  /**
   * Creates a client (`clientId`) with one client role whose composites are `includes`, as
   * an operator would; resolves to the client's id and the role.
   */
  newClientRole(clientId: string, includes: { id: string; name: string }[]): Promise<{ client: string; role: { id: string; name: string } }>;
  /** Password login as the API does it; the access token's claims and the tokens. */
  login(email: string, password: string): Promise<{ accessToken: string; refreshToken: string; sub: string; sid: string; iat: number }>;
  stop(): Promise<void>;
}

/**
 * A real Keycloak for a test file: the launcher's `postgres` and `keycloak` parts on free
 * ports in a fresh data directory (removed by `stop`), with the realm of deploy/keycloak.
 */
export async function startTestKeycloak(): Promise<TestKeycloak> {
  const cacheDir = process.env.GEF_CACHE_DIR || join(homedir(), '.cache', 'gef');
  const dataDir = mkdtempSync(join(tmpdir(), 'gef-user-kc-'));
  let stack: Stack;
  try {
    stack = await startStack({
      dataDir,
      cacheDir,
      ports: await freeStackPorts(),
      parts: ['postgres', 'keycloak'],
      postgresSeed: postgresTemplate(cacheDir),
      gracePeriodMs: 5000,
      env: { GEF_ENV: 'test' },
    });
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const url = stack.urls.keycloak;
  const { keycloakAdmin, keycloakAdminPassword, keycloakClientSecret } = stack.config.settings;
  let adminToken: { value: string; until: number } | undefined;
  const operatorToken = async (): Promise<string> => {
    if (adminToken && adminToken.until > Date.now()) return adminToken.value;
    const res = await fetch(`${url}/realms/master/protocol/openid-connect/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'password', client_id: 'admin-cli', username: keycloakAdmin, password: keycloakAdminPassword }),
    });
    if (!res.ok) throw new Error(`master admin login: ${res.status}`);
    const body = (await res.json()) as { access_token: string; expires_in: number };
    adminToken = { value: body.access_token, until: Date.now() + (body.expires_in - 10) * 1000 };
    return body.access_token;
  };
  const settings: KeycloakSettings = { url, realm: 'gef', clientId: 'gef-api', clientSecret: keycloakClientSecret };
  const keycloak: TestKeycloak = {
    stack,
    settings,
    databaseUrl: databaseUrl(stack.ports, 'gef_user'),
    missingGrants: [],
    async setServiceAccountRole(name, held) {
      const api = (await keycloak.console<{ id: string }[]>('GET', `/clients?clientId=${settings.clientId}`))[0]!.id;
      const account = await keycloak.console<{ id: string }>('GET', `/clients/${api}/service-account-user`);
      const management = (await keycloak.console<{ id: string }[]>('GET', '/clients?clientId=realm-management'))[0]!.id;
      const role = await keycloak.console<{ id: string; name: string }>('GET', `/clients/${management}/roles/${name}`);
      await keycloak.console(held ? 'POST' : 'DELETE', `/users/${account.id}/role-mappings/clients/${management}`, [role]);
    },
    async console<T>(method: string, path: string, body?: unknown): Promise<T> {
      const res = await fetch(`${url}/admin/realms/gef${path}`, {
        method,
        headers: { authorization: `Bearer ${await operatorToken()}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      if (!res.ok) throw new Error(`console ${method} ${path}: ${res.status} ${await res.text()}`);
      const text = await res.text();
      return (text ? JSON.parse(text) : undefined) as T;
    },
    async createUser(email, password) {
      const res = await fetch(`${url}/admin/realms/gef/users`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await operatorToken()}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          username: email,
          email,
          enabled: true,
          emailVerified: true,
          credentials: [{ type: 'password', value: password, temporary: false }],
        }),
      });
      if (res.status !== 201) throw new Error(`create user: ${res.status} ${await res.text()}`);
      return (res.headers.get('location') ?? '').split('/').pop()!;
    },
    async newClientRole(clientId, includes) {
      await keycloak.console('POST', '/clients', { clientId, publicClient: false, serviceAccountsEnabled: false });
      const client = (await keycloak.console<{ id: string; clientId: string }[]>('GET', `/clients?clientId=${encodeURIComponent(clientId)}`)).find(
        (c) => c.clientId === clientId,
      )!.id;
      await keycloak.console('POST', `/clients/${client}/roles`, { name: 'cr' });
      const role = await keycloak.console<{ id: string; name: string }>('GET', `/clients/${client}/roles/cr`);
      if (includes.length > 0) await keycloak.console('POST', `/clients/${client}/roles/cr/composites`, includes);
      return { client, role };
    },
    async login(email, password) {
      const res = await fetch(`${url}/realms/gef/protocol/openid-connect/token`, {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'password',
          client_id: settings.clientId,
          client_secret: settings.clientSecret,
          username: email,
          password,
          scope: 'openid',
        }),
      });
      if (!res.ok) throw new Error(`login ${email}: ${res.status} ${await res.text()}`);
      const body = (await res.json()) as { access_token: string; refresh_token: string };
      const claims = JSON.parse(Buffer.from(body.access_token.split('.')[1]!, 'base64url').toString('utf8')) as {
        sub: string;
        sid: string;
        iat: number;
      };
      return { accessToken: body.access_token, refreshToken: body.refresh_token, sub: claims.sub, sid: claims.sid, iat: claims.iat };
    },
    async stop() {
      try {
        await stack.stop();
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
  try {
    const api = (await keycloak.console<{ id: string }[]>('GET', `/clients?clientId=${settings.clientId}`))[0]!.id;
    const account = await keycloak.console<{ id: string }>('GET', `/clients/${api}/service-account-user`);
    const management = (await keycloak.console<{ id: string }[]>('GET', '/clients?clientId=realm-management'))[0]!.id;
    const held = await keycloak.console<{ name: string }[]>('GET', `/users/${account.id}/role-mappings/clients/${management}/composite`);
    for (const name of neededGrants) {
      if (held.some((r) => r.name === name)) continue;
      await keycloak.setServiceAccountRole(name, true);
      keycloak.missingGrants.push(name);
    }
  } catch (err) {
    await keycloak.stop();
    throw err;
  }
  return keycloak;
}
