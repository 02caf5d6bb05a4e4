/**
 * A poll of Keycloak's admin events that waits on Keycloak longer than the service's
 * idle-in-transaction limit still moves its cursor (real PostgreSQL; Keycloak is a fake
 * that answers slowly, as one under load or with a backlog of pages would).
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import { createLogger } from '@gef/common';
import { openDatabase } from '@gef/common/orm';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { entities } from '../src/entities';
import { migrations } from '../src/migrations';
import { KeycloakChanges, type KeycloakChangesOptions } from '../src/revocations/keycloak-changes';

let pg: TestPostgres;
let orm: MikroORM;

beforeAll(async () => {
  pg = await startTestPostgres('gef_user_keycloak_slow');
  orm = await openDatabase({
    url: pg.url,
    entities,
    migrations,
    logger: createLogger('user-test', 'silent'),
    timeouts: { statementSeconds: 60, idleInTransactionSeconds: 1 },
  });
}, 120_000);

afterAll(async () => {
  await orm?.close();
  await pg?.stop();
}, 60_000);

it('moves its cursor after a poll that waited on Keycloak past the idle-in-transaction limit', async () => {
  const slowKeycloak: KeycloakChangesOptions['keycloak'] = {
    adminEvents: async () => {
      await new Promise((r) => setTimeout(r, 1500));
      return [];
    },
    ensureAdminEvents: async () => true,
    serviceAccountUserId: async () => 'service-account',
    getUser: async () => undefined,
    groupMemberIds: async () => new Set<string>(),
    roleHolders: async () => new Map(),
  };
  const changes = new KeycloakChanges({
    orm,
    keycloak: slowKeycloak,
    revocations: { revokeUsersBefore: async () => [] },
    logger: createLogger('user-test', 'silent'),
    tokenLifetimeSeconds: 300,
  });
  const before = await orm.em.fork().execute<{ event_time: string | null }[]>('select event_time from keycloak_event_cursor where id = 1');
  expect(before[0]?.event_time).toBeNull();
  expect(await changes.poll()).toBe(0);
  const after = await orm.em.fork().execute<{ event_time: string | null }[]>('select event_time from keycloak_event_cursor where id = 1');
  expect(after[0]?.event_time).not.toBeNull();
}, 60_000);
