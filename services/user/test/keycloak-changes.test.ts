/**
 * Changes made in Keycloak's admin console (here: its admin API, as the console calls it,
 * by the master realm's admin) revoke the tokens they make stale, against a real Keycloak
 * and PostgreSQL: a user disabled, a realm role mapped or unmapped, a group joined or left,
 * a group's roles changed, a group deleted, a client role that includes ADMIN or SUPERADMIN
 * mapped, unmapped or changed, a client deleted. What the API does itself is left to it. The
 * follower resumes where it stopped after a restart, and waits out a restart of Keycloak.
 */
import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { createLogger } from '@gef/common';
import { openDatabase } from '@gef/common/orm';
import { entities } from '../src/entities';
import { KeycloakAdminClient, type KeycloakRole } from '../src/keycloak/admin-client';
import { migrations } from '../src/migrations';
import { KeycloakChanges } from '../src/revocations/keycloak-changes';
import { RevocationHub } from '../src/revocations/revocation-hub';
import { startTestKeycloak, type TestKeycloak } from './support/test-keycloak';

jest.setTimeout(300_000);

const logger = createLogger('user-test', 'silent');
const password = 'Test-Passw0rd!x';

let kc: TestKeycloak;
let orm: MikroORM;
let keycloak: KeycloakAdminClient;
let hub: RevocationHub;
let changes: KeycloakChanges | undefined;
const watching = new AbortController();
/** Every user revocation the hub streamed (what gateways receive), with when it arrived. */
const received: { userId: string; notBefore: number; at: number }[] = [];
/** How long each change took from the console's answer to the revocation's arrival (ms). */
const delays: Record<string, number> = {};

// Reads every 200 ms: the second the checks below allow is spent on the work of a read, not
// on waiting for one, on a machine where this Keycloak shares two cores with the stack's.
const follower = () =>
  new KeycloakChanges({ orm, keycloak, revocations: hub, logger, tokenLifetimeSeconds: 3600, intervalMs: 200 });

beforeAll(async () => {
  kc = await startTestKeycloak();
  orm = await openDatabase({ url: kc.databaseUrl, entities, migrations, logger });
  keycloak = new KeycloakAdminClient(kc.settings);
  hub = new RevocationHub(orm, kc.databaseUrl, 3600, logger);
  await hub.start();
  void (async () => {
    for await (const e of hub.watch(watching.signal, 60_000)) {
      if (e && 'revocation' in e && e.revocation.userId) {
        received.push({ userId: e.revocation.userId, notBefore: e.revocation.notBefore.getTime(), at: Date.now() });
      }
    }
  })();
});

afterAll(async () => {
  await changes?.stop();
  watching.abort();
  await hub?.stop();
  await orm?.close();
  await kc?.stop();
  if (Object.keys(delays).length > 0) console.log(`console change → revocation streamed (ms): ${JSON.stringify(delays)}`);
});

let n = 0;
const unique = (prefix: string) => `${prefix}-${Date.now()}-${++n}`;

/** A user with a session: the access token's issue time (s). */
async function userWithToken(prefix: string): Promise<{ id: string; email: string; iat: number }> {
  const email = `${unique(prefix)}@example.org`;
  const id = await kc.createUser(email, password);
  const { iat } = await kc.login(email, password);
  return { id, email, iat };
}

/** Resolves once a revocation of the user arrives that refuses a token issued at `iat`; the wait (ms). */
async function revoked(userId: string, iat: number, since: number, timeoutMs = 5000): Promise<number> {
  for (;;) {
    const hit = received.find((r) => r.userId === userId && iat * 1000 < r.notBefore);
    if (hit) return hit.at - since;
    if (Date.now() - since > timeoutMs) throw new Error(`no revocation of ${userId} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits `ms` and says whether any revocation of the users arrived meanwhile. */
async function revokedWithin(userIds: string[], ms: number): Promise<boolean> {
  await new Promise((r) => setTimeout(r, ms));
  return received.some((r) => userIds.includes(r.userId));
}

const role = (name: string) => kc.console<KeycloakRole>('GET', `/roles/${name}`);

async function newGroup(roles: string[], parent?: string): Promise<string> {
  const name = unique('group');
  await kc.console('POST', parent ? `/groups/${parent}/children` : '/groups', { name });
  const found = await kc.console<{ id: string; name: string }[]>('GET', parent ? `/groups/${parent}/children?search=${name}&exact=true` : `/groups?search=${name}&exact=true`);
  const id = found.find((g) => g.name === name)!.id;
  if (roles.length > 0) await kc.console('POST', `/groups/${id}/role-mappings/realm`, await Promise.all(roles.map(role)));
  return id;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The realm roles an access token carries (what the gateway trusts). */
const tokenRoles = (accessToken: string): string[] =>
  (JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString('utf8')) as { realm_access?: { roles?: string[] } }).realm_access
    ?.roles ?? [];

/** Disables a user as the console does: the whole representation back with `enabled: false`. */
async function disable(userId: string): Promise<number> {
  const user = await kc.console<Record<string, unknown>>('GET', `/users/${userId}`);
  await kc.console('PUT', `/users/${userId}`, { ...user, enabled: false });
  return Date.now();
}

describe('changes made in the Keycloak console', () => {
  it('turns on admin events with representations where they are off', async () => {
    await kc.console('PUT', '/events/config', { adminEventsEnabled: false, adminEventsDetailsEnabled: false });
    changes = follower();
    changes.start();
    for (let i = 0; ; i++) {
      const config = await kc.console<{ adminEventsEnabled: boolean; adminEventsDetailsEnabled: boolean }>('GET', '/events/config');
      if (config.adminEventsEnabled && config.adminEventsDetailsEnabled) break;
      if (i > 100) throw new Error('admin events were not turned on');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it('a user disabled: the tokens issued before are refused within a second', async () => {
    const u = await userWithToken('disabled');
    const bystander = await userWithToken('bystander');
    delays['user disabled'] = await revoked(u.id, u.iat, await disable(u.id));
    expect(delays['user disabled']).toBeLessThan(1000);
    expect(await revokedWithin([bystander.id], 1000)).toBe(false);
  });

  it('a user signed out or deleted: the tokens issued before are refused', async () => {
    const signedOut = await userWithToken('signed-out');
    await kc.console('POST', `/users/${signedOut.id}/logout`);
    delays['user signed out'] = await revoked(signedOut.id, signedOut.iat, Date.now());
    const deleted = await userWithToken('deleted');
    await kc.console('DELETE', `/users/${deleted.id}`);
    delays['user deleted'] = await revoked(deleted.id, deleted.iat, Date.now());
  });

  it('a realm role mapped or unmapped: the user is revoked', async () => {
    const promoted = await userWithToken('promoted');
    await kc.console('POST', `/users/${promoted.id}/role-mappings/realm`, [await role('ADMIN')]);
    delays['realm role mapped'] = await revoked(promoted.id, promoted.iat, Date.now());

    const demoted = await userWithToken('demoted');
    await kc.console('POST', `/users/${demoted.id}/role-mappings/realm`, [await role('SUPERADMIN')]);
    await revoked(demoted.id, demoted.iat, Date.now());
    // A token with the role, then the role removed.
    await new Promise((r) => setTimeout(r, 1000));
    const withRole = await kc.login(demoted.email, password);
    await kc.console('DELETE', `/users/${demoted.id}/role-mappings/realm`, [await role('SUPERADMIN')]);
    delays['realm role unmapped'] = await revoked(demoted.id, withRole.iat, Date.now());
    expect(Math.max(delays['realm role mapped'], delays['realm role unmapped'])).toBeLessThan(1000);
  });

  it("a group joined or left, or a group's roles changed: its members are revoked, subgroups' members included", async () => {
    const group = await newGroup(['ADMIN']);
    const joiner = await userWithToken('joiner');
    await kc.console('PUT', `/users/${joiner.id}/groups/${group}`);
    delays['group joined'] = await revoked(joiner.id, joiner.iat, Date.now());

    const parent = await newGroup([]);
    const child = await newGroup([], parent);
    const member = await userWithToken('member');
    const childMember = await userWithToken('child-member');
    const outsider = await userWithToken('outsider');
    await kc.console('PUT', `/users/${member.id}/groups/${parent}`);
    await kc.console('PUT', `/users/${childMember.id}/groups/${child}`);
    await revoked(member.id, member.iat, Date.now());
    await revoked(childMember.id, childMember.iat, Date.now());
    await new Promise((r) => setTimeout(r, 1000));
    const tokens = [await kc.login(member.email, password), await kc.login(childMember.email, password)];
    await kc.console('POST', `/groups/${parent}/role-mappings/realm`, [await role('SUPERADMIN')]);
    const at = Date.now();
    delays["group's roles changed"] = await revoked(member.id, tokens[0]!.iat, at);
    await revoked(childMember.id, tokens[1]!.iat, at);
    expect(received.some((r) => r.userId === outsider.id)).toBe(false);

    await new Promise((r) => setTimeout(r, 1000));
    const again = await kc.login(joiner.email, password);
    await kc.console('DELETE', `/users/${joiner.id}/groups/${group}`);
    delays['group left'] = await revoked(joiner.id, again.iat, Date.now());
  });

  it('a group deleted: its members who held a role through it are revoked', async () => {
    const group = await newGroup(['ADMIN']);
    const member = await userWithToken('deleted-group-member');
    await kc.console('PUT', `/users/${member.id}/groups/${group}`);
    await revoked(member.id, member.iat, Date.now());
    await new Promise((r) => setTimeout(r, 1000));
    const admin = await kc.login(member.email, password);
    await kc.console('DELETE', `/groups/${group}`);
    delays['group deleted'] = await revoked(member.id, admin.iat, Date.now());
  });

  it('a client role that includes ADMIN mapped or unmapped, or ADMIN added to or removed from it: the user is revoked', async () => {
    const { client, role: cr } = await kc.newClientRole(unique('client'), [await role('ADMIN')]);
    const u = await userWithToken('client-role');
    const bystander = await userWithToken('client-role-bystander');
    await kc.console('POST', `/users/${u.id}/role-mappings/clients/${client}`, [cr]);
    delays['client role mapped'] = await revoked(u.id, u.iat, Date.now());

    await sleep(1000);
    let token = await kc.login(u.email, password);
    expect(tokenRoles(token.accessToken)).toContain('ADMIN');
    // As the console does it: by the role's id.
    await kc.console('DELETE', `/roles-by-id/${cr.id}/composites`, [await role('ADMIN')]);
    delays['client role composite removed'] = await revoked(u.id, token.iat, Date.now());

    await sleep(1000);
    token = await kc.login(u.email, password);
    expect(tokenRoles(token.accessToken)).not.toContain('ADMIN');
    await kc.console('POST', `/clients/${client}/roles/cr/composites`, [await role('ADMIN')]);
    delays['client role composite added'] = await revoked(u.id, token.iat, Date.now());

    await sleep(1000);
    token = await kc.login(u.email, password);
    expect(tokenRoles(token.accessToken)).toContain('ADMIN');
    await kc.console('DELETE', `/users/${u.id}/role-mappings/clients/${client}`, [cr]);
    delays['client role unmapped'] = await revoked(u.id, token.iat, Date.now());
    expect(received.some((r) => r.userId === bystander.id)).toBe(false);
  });

  it("a client role that includes SUPERADMIN mapped to a group or unmapped from it, or its client deleted: the members are revoked, subgroups' included", async () => {
    const { client, role: cr } = await kc.newClientRole(unique('client'), [await role('SUPERADMIN')]);
    const parent = await newGroup([]);
    const child = await newGroup([], parent);
    const member = await userWithToken('client-role-group-member');
    const childMember = await userWithToken('client-role-subgroup-member');
    const outsider = await userWithToken('client-role-outsider');
    await kc.console('PUT', `/users/${member.id}/groups/${parent}`);
    await kc.console('PUT', `/users/${childMember.id}/groups/${child}`);
    await revoked(member.id, member.iat, Date.now());
    await revoked(childMember.id, childMember.iat, Date.now());

    const login = async () => {
      await sleep(1000);
      return [await kc.login(member.email, password), await kc.login(childMember.email, password)] as const;
    };
    let tokens = await login();
    await kc.console('POST', `/groups/${parent}/role-mappings/clients/${client}`, [cr]);
    let at = Date.now();
    delays['client role mapped to a group'] = await revoked(member.id, tokens[0].iat, at);
    await revoked(childMember.id, tokens[1].iat, at);

    tokens = await login();
    expect(tokenRoles(tokens[1].accessToken)).toContain('SUPERADMIN');
    await kc.console('DELETE', `/groups/${parent}/role-mappings/clients/${client}`, [cr]);
    at = Date.now();
    delays['client role unmapped from a group'] = await revoked(member.id, tokens[0].iat, at);
    await revoked(childMember.id, tokens[1].iat, at);

    await kc.console('POST', `/groups/${parent}/role-mappings/clients/${client}`, [cr]);
    tokens = await login();
    expect(tokenRoles(tokens[0].accessToken)).toContain('SUPERADMIN');
    await kc.console('DELETE', `/clients/${client}`);
    at = Date.now();
    delays['client deleted'] = await revoked(member.id, tokens[0].iat, at);
    await revoked(childMember.id, tokens[1].iat, at);
    expect(received.some((r) => r.userId === outsider.id)).toBe(false);
  });

  it("leaves the API's own changes to the API (it revokes as it makes them)", async () => {
    const u = await userWithToken('api-promoted');
    await keycloak.addUserRealmRoles(u.id, [await keycloak.getRealmRole('ADMIN')]);
    expect(await revokedWithin([u.id], 2000)).toBe(false);
  });

  it('resumes after a restart of the user service: a change made while it was down is acted on, and one seen twice revokes once', async () => {
    const before = await userWithToken('before-restart');
    await disable(before.id);
    await revoked(before.id, before.iat, Date.now());
    await changes!.stop();

    const during = await userWithToken('during-restart');
    await disable(during.id);
    await new Promise((r) => setTimeout(r, 1500));
    expect(received.some((r) => r.userId === during.id)).toBe(false);

    changes = follower();
    changes.start();
    await revoked(during.id, during.iat, Date.now());
    // The new follower read the disabling of `before` again (it starts before its cursor): no second revocation.
    await new Promise((r) => setTimeout(r, 1000));
    const rows = await orm.em.fork().execute<{ n: string }[]>('select count(*) as n from revocation where user_id = ?', [before.id]);
    expect(Number(rows[0]!.n)).toBe(1);
  });

  it('waits out a restart of Keycloak, then goes on', async () => {
    await kc.stack.stopPart('keycloak');
    await new Promise((r) => setTimeout(r, 1500));
    await kc.stack.startPart('keycloak');
    const u = await userWithToken('after-keycloak-restart');
    delays['user disabled after a Keycloak restart'] = await revoked(u.id, u.iat, await disable(u.id), 10_000);
  });

  describe('a user deleted in the console', () => {
    /** A user with a profile in this service, as registration leaves them. */
    async function withProfile(prefix: string): Promise<{ id: string; email: string; iat: number }> {
      const u = await userWithToken(prefix);
      await orm.em.fork().execute(`insert into user_profile (id, email, name, created_at, updated_at) values (?, ?, 'Console', now(), now())`, [u.id, u.email]);
      return u;
    }
    const deletionDue = async (userId: string) =>
      (await orm.em.fork().execute<{ due: boolean }[]>('select next_at <= now() as due from user_deletion_dispatch where user_id = ?', [userId]))[0]?.due === true;
    async function untilDue(userId: string, timeoutMs = 5000): Promise<void> {
      for (const start = Date.now(); !(await deletionDue(userId)); await sleep(50)) {
        if (Date.now() - start > timeoutMs) throw new Error(`no deletion of ${userId} was recorded`);
      }
    }

    it('is deleted everywhere: their deletion is due at once (the deleteUser workflow follows)', async () => {
      const u = await withProfile('console-deleted');
      const bystander = await withProfile('console-bystander');
      await kc.console('DELETE', `/users/${u.id}`);
      await revoked(u.id, u.iat, Date.now());
      await untilDue(u.id);
      expect(await deletionDue(bystander.id)).toBe(false);
    });

    it('records nothing for a login without a profile, or one the API deleted itself', async () => {
      const bare = await userWithToken('console-no-profile');
      await kc.console('DELETE', `/users/${bare.id}`);
      await revoked(bare.id, bare.iat, Date.now());
      const own = await withProfile('api-deleted');
      await keycloak.deleteUser(own.id);
      await sleep(1500);
      expect(await orm.em.fork().execute('select user_id from user_deletion_dispatch where user_id in (?, ?)', [bare.id, own.id])).toEqual([]);
    });

    it('while this service was down longer than tokens live is deleted everywhere all the same', async () => {
      await changes!.stop();
      const u = await withProfile('deleted-while-down');
      await kc.console('DELETE', `/users/${u.id}`);
      // Hours later: the change is older than any token, but a deletion is still followed.
      changes = new KeycloakChanges({ orm, keycloak, revocations: hub, logger, tokenLifetimeSeconds: 3600, intervalMs: 200, now: () => Date.now() + 3 * 3_600_000 });
      changes.start();
      await untilDue(u.id);
      await changes.stop();
      changes = follower();
      changes.start();
    });
  });

  it('revokes a user once per change, however often the change is seen', async () => {
    expect(await hub.revokeUsersBefore(['not-a-uuid'], new Date())).toEqual([]);
    const id = randomUUID();
    const at = new Date(Math.ceil(Date.now() / 1000) * 1000);
    expect(await hub.revokeUsersBefore([id, id], at)).toEqual([id]);
    expect(await hub.revokeUsersBefore([id], at)).toEqual([]);
  });
});
