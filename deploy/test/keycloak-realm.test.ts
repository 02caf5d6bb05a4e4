import { readFileSync } from 'node:fs';
import { resolveConfig } from '../src/config';
import { keycloakArgs, keycloakEnv, REALM_FILE } from '../src/keycloak';
import { loggedArg } from '../src/process';
import { temporalArgs } from '../src/temporal';
import { maildevArgs } from '../src/maildev';

interface Realm {
  realm: string;
  registrationEmailAsUsername: boolean;
  loginWithEmailAllowed: boolean;
  duplicateEmailsAllowed: boolean;
  bruteForceProtected: boolean;
  permanentLockout: boolean;
  failureFactor: number;
  waitIncrementSeconds: number;
  maxFailureWaitSeconds: number;
  passwordPolicy: string;
  accessTokenLifespan: number;
  ssoSessionIdleTimeout: number;
  ssoSessionMaxLifespan: number;
  actionTokenGeneratedByAdminLifespan: number;
  actionTokenGeneratedByUserLifespan: number;
  smtpServer: Record<string, string>;
  roles: { realm: { name: string; composites?: { realm?: string[] } }[] };
  defaultRole: { name: string };
  clients: {
    clientId: string;
    publicClient: boolean;
    secret: string;
    directAccessGrantsEnabled: boolean;
    serviceAccountsEnabled: boolean;
    attributes: Record<string, string>;
    protocolMappers: { protocolMapper: string; config: Record<string, string> }[];
  }[];
  users: { username: string; serviceAccountClientId?: string; clientRoles?: Record<string, string[]> }[];
}

const realm = JSON.parse(readFileSync(REALM_FILE, 'utf8')) as Realm;

describe('the gef realm', () => {
  test('identity: e-mail as username, login with e-mail, no duplicates', () => {
    expect(realm.realm).toBe('gef');
    expect(realm).toMatchObject({ registrationEmailAsUsername: true, loginWithEmailAllowed: true, duplicateEmailsAllowed: false });
  });

  test('roles USER, ADMIN, SUPERADMIN; USER is a default role', () => {
    const names = realm.roles.realm.map((role) => role.name);
    expect(names).toEqual(expect.arrayContaining(['USER', 'ADMIN', 'SUPERADMIN']));
    const defaults = realm.roles.realm.find((role) => role.name === realm.defaultRole.name);
    expect(defaults?.composites?.realm).toContain('USER');
  });

  test('lockout after 5 failures for 15 minutes, not permanent; the password policy of the contract', () => {
    expect(realm).toMatchObject({ bruteForceProtected: true, permanentLockout: false, failureFactor: 5, waitIncrementSeconds: 900, maxFailureWaitSeconds: 900 });
    expect(realm.passwordPolicy).toBe('length(12) and upperCase(1) and lowerCase(1) and digits(1) and specialChars(1)');
  });

  test('token lifetimes: 1 h access tokens, refresh for 7 days idle and 30 days max, 1 h action tokens', () => {
    expect(realm).toMatchObject({
      accessTokenLifespan: 3600,
      ssoSessionIdleTimeout: 7 * 24 * 3600,
      ssoSessionMaxLifespan: 30 * 24 * 3600,
      actionTokenGeneratedByAdminLifespan: 3600,
      actionTokenGeneratedByUserLifespan: 3600,
    });
  });

  test('the gef-api client: confidential, password grant, service account, audience gef-api, secret from the environment', () => {
    const client = realm.clients.find((c) => c.clientId === 'gef-api');
    expect(client).toMatchObject({ publicClient: false, directAccessGrantsEnabled: true, serviceAccountsEnabled: true, secret: '${KEYCLOAK_CLIENT_SECRET}' });
    expect(client?.attributes['use.refresh.tokens']).toBe('true');
    const audience = client?.protocolMappers.find((m) => m.protocolMapper === 'oidc-audience-mapper');
    expect(audience?.config).toMatchObject({ 'included.client.audience': 'gef-api', 'access.token.claim': 'true' });
    const account = realm.users.find((u) => u.serviceAccountClientId === 'gef-api');
    expect(account?.clientRoles?.['realm-management']).toEqual(expect.arrayContaining(['manage-users', 'view-users', 'query-users', 'view-realm']));
  });

  test('a user cannot change their own e-mail or username (the API knows users by them; an unverified change would claim another person’s address)', () => {
    const provider = (realm as unknown as { components: Record<string, { config: Record<string, string[]> }[]> }).components['org.keycloak.userprofile.UserProfileProvider']![0]!;
    const profile = JSON.parse(provider.config['kc.user.profile.config']![0]!) as { attributes: { name: string; permissions: { edit: string[] } }[] };
    for (const name of ['username', 'email']) {
      expect({ name, edit: profile.attributes.find((a) => a.name === name)?.permissions.edit }).toEqual({ name, edit: ['admin'] });
    }
  });

  test('mail goes to the configured SMTP server from no-reply@gef.local', () => {
    expect(realm.smtpServer).toMatchObject({ host: '${SMTP_HOST}', port: '${SMTP_PORT}', from: 'no-reply@gef.local' });
  });

  test('no other ${...} placeholder that the import would try to resolve', () => {
    const placeholders = readFileSync(REALM_FILE, 'utf8').match(/\$\{[^}]+\}/g) ?? [];
    expect([...new Set(placeholders)].sort()).toEqual(['${KEYCLOAK_CLIENT_SECRET}', '${SMTP_HOST}', '${SMTP_PORT}']);
  });
});

describe('command lines', () => {
  const config = resolveConfig({ processEnv: { PATH: '/bin' }, dataDir: '/data', ports: { postgres: 6000, keycloak: 6001, keycloakManagement: 6002, maildevSmtp: 6003, temporal: 6004 } });

  test('Keycloak: dev mode on our ports and database, realm import, health on the management port', () => {
    expect(keycloakArgs(config)).toEqual(
      expect.arrayContaining([
        'start-dev',
        '--http-port=6001',
        '--http-management-port=6002',
        '--health-enabled=true',
        '--db=postgres',
        '--db-url=jdbc:postgresql://127.0.0.1:6000/keycloak',
        '--import-realm',
      ]),
    );
    const env = keycloakEnv(config, { command: '/usr/bin/java', home: undefined, major: 17 });
    expect(env).toMatchObject({ KC_BOOTSTRAP_ADMIN_USERNAME: 'admin', KC_BOOTSTRAP_ADMIN_PASSWORD: 'admin', KEYCLOAK_CLIENT_SECRET: 'gef-api-dev-secret', SMTP_HOST: '127.0.0.1', SMTP_PORT: '6003' });
    // Vert.x's file cache stays in the stack's data directory, not a world-writable /tmp/vertx-cache.
    expect(env.JAVA_OPTS_APPEND).toContain('-Dvertx.cacheDirBase=/data/keycloak/vertx-cache');
    // The database password travels in the environment: a command line is every process's to read.
    expect(env.KC_DB_PASSWORD).toBe('postgres');
    expect(keycloakArgs(config).some((a) => /password/i.test(a))).toBe(false);
  });

  test('the log of a start masks the values of password, secret and token options', () => {
    expect(['--db-password=hunter2', '--client-secret=s', '--api-token=t', '--db-url=jdbc:x', '--password'].map(loggedArg)).toEqual([
      '--db-password=****',
      '--client-secret=****',
      '--api-token=****',
      '--db-url=jdbc:x',
      '--password',
    ]);
  });

  test('Temporal: persistent SQLite file under the data dir, our ports, the search attributes', () => {
    const args = temporalArgs(config);
    expect(args.slice(0, 4)).toEqual(['server', 'start-dev', '--db-filename', '/data/temporal/temporal.db']);
    expect(args.join(' ')).toContain('--ip 127.0.0.1 --port 6004 --ui-port 8233');
    expect(args.join(' ')).toContain('--search-attribute GefUserId=Keyword --search-attribute GefScriptId=Keyword --search-attribute GefStatus=Keyword');
  });

  test('MailDev: SMTP and web on 127.0.0.1', () => {
    expect(maildevArgs(config, 'maildev.js').join(' ')).toBe('maildev.js --smtp 6003 --ip 127.0.0.1 --web 1080 --web-ip 127.0.0.1 --mail-directory /data/maildev');
  });
});
