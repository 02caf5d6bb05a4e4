/**
 * Reads of Keycloak's admin events against a real PostgreSQL, Keycloak a fake: a read that
 * waits on Keycloak longer than the service's idle-in-transaction limit still moves its
 * cursor, and a read that fails halfway leaves its events to the next one.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import { createLogger } from '@gef/common';
import { openDatabase } from '@gef/common/orm';
import { startTestPostgres, type TestPostgres } from '@gef/deploy';
import { entities } from '../src/entities';
import { migrations } from '../src/migrations';
import type { KeycloakAdminEvent } from '../src/keycloak/admin-client';
import { KeycloakChanges, type KeycloakChangesOptions } from '../src/revocations/keycloak-changes';

let pg: TestPostgres;
let orm: MikroORM;

beforeAll(async () => {
  pg = await startTestPostgres('gef_user_keycloak_poll');
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

it('acts again on the events of a read that failed before its cursor was committed', async () => {
  await orm.em.fork().execute('update keycloak_event_cursor set event_time = null, holders = null where id = 1');
  const events: KeycloakAdminEvent[] = [];
  let admins = new Set(['admin-a']);
  let rolesFail = false;
  const revoked: string[][] = [];
  const keycloak: KeycloakChangesOptions['keycloak'] = {
    adminEvents: async () => events,
    ensureAdminEvents: async () => true,
    serviceAccountUserId: async () => 'service-account',
    getUser: async () => undefined,
    groupMemberIds: async () => new Set<string>(),
    roleHolders: async () => {
      if (rolesFail) throw Object.assign(new Error('Keycloak answered 502'), { unavailable: true });
      return new Map([['ADMIN', new Set(admins)]]);
    },
  };
  const changes = new KeycloakChanges({
    orm,
    keycloak,
    revocations: {
      revokeUsersBefore: async (ids) => {
        revoked.push([...ids]);
        return [...ids];
      },
    },
    logger: createLogger('user-test', 'silent'),
    tokenLifetimeSeconds: 300,
  });
  // The first read records who holds ADMIN.
  await changes.poll();
  // A group deleted in the console took ADMIN from admin-a: the event names nobody.
  events.push({ id: 'event-1', time: Date.now(), operationType: 'DELETE', resourceType: 'GROUP', resourcePath: 'groups/g1' });
  admins = new Set();
  rolesFail = true;
  await expect(changes.poll()).rejects.toThrow('Keycloak answered 502');
  expect(revoked).toEqual([]);
  rolesFail = false;
  expect(await changes.poll()).toBe(1);
  expect(revoked).toEqual([['admin-a']]);
  // Committed: read again, the event is not acted on twice.
  expect(await changes.poll()).toBe(0);
  expect(revoked).toEqual([['admin-a']]);
}, 60_000);
