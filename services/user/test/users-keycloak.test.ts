/**
 * The user rules against a real Keycloak (and PostgreSQL): roles granted through a group,
 * a composite role or a client role that includes them count for who may see, change or
 * delete a user, and in the list.
 */
import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { createLogger } from '@gef/common';
import { openDatabase, unitOfWork } from '@gef/common/orm';
import { RoleDirectory } from '../src/domain/role-directory';
import { Users } from '../src/domain/users';
import type { Actor } from '../src/domain/policy';
import { entities } from '../src/entities';
import { KeycloakAdminClient, type KeycloakRole } from '../src/keycloak/admin-client';
import { KeycloakTokenClient } from '../src/keycloak/token-client';
import { migrations } from '../src/migrations';
import { UserProfileRepository } from '../src/repositories/user-profile-repository';
import { RevocationHub } from '../src/revocations/revocation-hub';
import { TokenLifetime } from '../src/revocations/token-lifetime';
import { startTestKeycloak, type TestKeycloak } from './support/test-keycloak';

jest.setTimeout(300_000);

const logger = createLogger('user-test', 'silent');
const password = 'Test-Passw0rd!x';

let kc: TestKeycloak;
let orm: MikroORM;
let keycloak: KeycloakAdminClient;
let hub: RevocationHub;
let users: Users;
let roles: RoleDirectory;

const admin: Actor = { userId: randomUUID(), role: 'ADMIN' };
const superadmin: Actor = { userId: randomUUID(), role: 'SUPERADMIN' };

beforeAll(async () => {
  kc = await startTestKeycloak();
  orm = await openDatabase({ url: kc.databaseUrl, entities, migrations, logger });
  keycloak = new KeycloakAdminClient(kc.settings);
  hub = new RevocationHub(orm, kc.databaseUrl, 3600, logger);
  await hub.start();
  users = new Users({
    orm,
    keycloak,
    tokens: new KeycloakTokenClient(kc.settings),
    passwordLinks: {} as never,
    revocations: hub,
    roles: (roles = new RoleDirectory(keycloak, { logger })),
    temporal: { workflow: { start: async () => ({}) } } as never,
    logger,
  });
});

afterAll(async () => {
  await hub?.stop();
  await orm?.close();
  await kc?.stop();
});

let n = 0;
const unique = (prefix: string) => `${prefix}-${Date.now()}-${++n}`;

/** A user in Keycloak (made as an operator would) with a profile here. */
async function newUser(prefix: string): Promise<{ id: string; email: string }> {
  const email = `${unique(prefix)}@example.org`;
  const id = await kc.createUser(email, password);
  await unitOfWork(orm, async (em) => new UserProfileRepository(em).create({ id, email, name: prefix }));
  return { id, email };
}

const role = (name: string) => kc.console<KeycloakRole>('GET', `/roles/${name}`);

/** A group made in the console, holding `roles`, below `parent` if given. */
async function newGroup(roles: string[], parent?: string): Promise<string> {
  const name = unique('group');
  await kc.console('POST', parent ? `/groups/${parent}/children` : '/groups', { name });
  const found = parent
    ? await kc.console<{ id: string; name: string }[]>('GET', `/groups/${parent}/children?search=${name}&exact=true`)
    : await kc.console<{ id: string; name: string }[]>('GET', `/groups?search=${name}&exact=true`);
  const id = found.find((g) => g.name === name)!.id;
  if (roles.length > 0) await kc.console('POST', `/groups/${id}/role-mappings/realm`, await Promise.all(roles.map(role)));
  return id;
}

const listed = async (actor: Actor, email: string) =>
  (await users.list(actor, { filter: `email=${email}` })).users.map((u) => ({ id: u.profile.id, role: u.role }));

/** Reads after the changes made in the console: past the two seconds a read of the role holders is kept. */
beforeEach(() => roles.invalidate());

describe('roles granted through Keycloak groups and composite roles', () => {
  it('a SUPERADMIN through a group is one: hidden from an ADMIN, who may neither change nor delete them', async () => {
    const group = await newGroup(['SUPERADMIN']);
    const owner = await newUser('group-superadmin');
    await kc.console('PUT', `/users/${owner.id}/groups/${group}`);
    roles.invalidate();

    expect((await users.get(owner.id, superadmin)).role).toBe('SUPERADMIN');
    expect(await listed(superadmin, owner.email)).toEqual([{ id: owner.id, role: 'SUPERADMIN' }]);
    expect(await listed(admin, owner.email)).toEqual([]);
    await expect(users.get(owner.id, admin)).rejects.toMatchObject({ name: 'NotFound' });
    await expect(users.update(owner.id, { name: 'Taken over' }, admin)).rejects.toMatchObject({ name: 'NotFound' });
    await expect(users.delete(owner.id, admin)).rejects.toMatchObject({ name: 'NotFound' });
    expect((await users.get(owner.id, superadmin)).profile.name).toBe('group-superadmin');
  });

  it('an ADMIN through a composite role or a parent group is one', async () => {
    const staff = unique('staff');
    await kc.console('POST', '/roles', { name: staff });
    await kc.console('POST', `/roles/${staff}/composites`, [await role('ADMIN')]);
    const viaComposite = await newUser('composite-admin');
    await kc.console('POST', `/users/${viaComposite.id}/role-mappings/realm`, [await role(staff)]);
    const parent = await newGroup(['ADMIN']);
    const child = await newGroup([], parent);
    const viaParent = await newUser('subgroup-admin');
    await kc.console('PUT', `/users/${viaParent.id}/groups/${child}`);
    const plain = await newUser('plain-user');
    roles.invalidate();

    for (const u of [viaComposite, viaParent]) {
      expect(await listed(superadmin, u.email)).toEqual([{ id: u.id, role: 'ADMIN' }]);
      expect(await listed(admin, u.email)).toEqual([]);
      await expect(users.update(u.id, { name: 'Changed' }, admin)).rejects.toMatchObject({ name: 'NotFound' });
    }
    expect(await listed(admin, plain.email)).toEqual([{ id: plain.id, role: 'USER' }]);
    expect((await users.update(plain.id, { name: 'Changed' }, admin)).profile.name).toBe('Changed');
  });

  it('an ADMIN or SUPERADMIN through a client role that includes it, mapped directly, through a (parent) group or a realm composite, is one', async () => {
    const { client, role: cr } = await kc.newClientRole(unique('client'), [await role('ADMIN')]);
    const direct = await newUser('client-role-admin');
    await kc.console('POST', `/users/${direct.id}/role-mappings/clients/${client}`, [cr]);
    const parent = await newGroup([]);
    await kc.console('POST', `/groups/${parent}/role-mappings/clients/${client}`, [cr]);
    const child = await newGroup([], parent);
    const viaGroup = await newUser('client-role-group-admin');
    await kc.console('PUT', `/users/${viaGroup.id}/groups/${child}`);
    // A realm role including a client role (of another client) including SUPERADMIN.
    const inner = await kc.newClientRole(unique('client'), [await role('SUPERADMIN')]);
    const outer = unique('outer');
    await kc.console('POST', '/roles', { name: outer });
    await kc.console('POST', `/roles/${outer}/composites`, [inner.role]);
    const deep = await newUser('client-role-deep-superadmin');
    await kc.console('POST', `/users/${deep.id}/role-mappings/realm`, [await role(outer)]);
    const plain = await newUser('client-role-plain');
    roles.invalidate();

    for (const [u, held] of [
      [direct, 'ADMIN'],
      [viaGroup, 'ADMIN'],
      [deep, 'SUPERADMIN'],
    ] as const) {
      expect((await users.get(u.id, superadmin)).role).toBe(held);
      expect(await listed(superadmin, u.email)).toEqual([{ id: u.id, role: held }]);
      expect(await listed(admin, u.email)).toEqual([]);
      await expect(users.get(u.id, admin)).rejects.toMatchObject({ name: 'NotFound' });
      await expect(users.update(u.id, { name: 'Taken over' }, admin)).rejects.toMatchObject({ name: 'NotFound' });
      await expect(users.delete(u.id, admin)).rejects.toMatchObject({ name: 'NotFound' });
    }
    expect(await listed(admin, plain.email)).toEqual([{ id: plain.id, role: 'USER' }]);

    // The composite removed: they are users again.
    await kc.console('DELETE', `/roles-by-id/${cr.id}/composites`, [await role('ADMIN')]);
    roles.invalidate();
    expect(await listed(admin, direct.email)).toEqual([{ id: direct.id, role: 'USER' }]);
    expect(await listed(admin, viaGroup.email)).toEqual([{ id: viaGroup.id, role: 'USER' }]);
  });

  it("the realm gives the API client's service account what counting client roles needs (realm-management view-clients)", () => {
    // Granted by test/support for the other tests when the realm lacks it.
    expect(kc.missingGrants).toEqual([]);
  });

  it('without view-clients, roles are read as before (realm roles, composites and groups) and the log says what is missing', async () => {
    const logged: string[] = [];
    const note = (_: unknown, msg?: string) => void logged.push(typeof _ === 'string' ? _ : (msg ?? ''));
    const log = { error: note, info: note, warn: note } as never;
    const parent = await newGroup(['ADMIN']);
    const viaGroup = await newUser('no-view-clients-group-admin');
    await kc.console('PUT', `/users/${viaGroup.id}/groups/${parent}`);
    await kc.setServiceAccountRole('view-clients', false);
    try {
      const blind = new KeycloakAdminClient(kc.settings, log);
      expect((await blind.roleHolders(['ADMIN'])).get('ADMIN')?.has(viaGroup.id)).toBe(true);
      await blind.roleHolders(['ADMIN']);
      expect(logged.filter((m) => m.includes('"view-clients"'))).toHaveLength(1);
    } finally {
      await kc.setServiceAccountRole('view-clients', true);
    }
  });

  it('a change or deletion reads the role Keycloak holds now, not the list read a moment ago', async () => {
    const group = await newGroup(['SUPERADMIN']);
    const target = await newUser('promoted');
    expect(await listed(admin, target.email)).toEqual([{ id: target.id, role: 'USER' }]);
    await kc.console('PUT', `/users/${target.id}/groups/${group}`);
    await expect(users.update(target.id, { name: 'Too late' }, admin)).rejects.toMatchObject({ name: 'NotFound' });
    await expect(users.delete(target.id, admin)).rejects.toMatchObject({ name: 'NotFound' });
  });
});

describe('demoting a role Keycloak grants through a group or a composite role', () => {
  const directRoles = async (id: string) =>
    (await kc.console<KeycloakRole[]>('GET', `/users/${id}/role-mappings/realm`)).map((r) => r.name).filter((r) => r === 'ADMIN' || r === 'SUPERADMIN').sort();
  const refused = { name: 'FailedPrecondition', reason: 'role_granted_in_keycloak', message: expect.stringMatching(/through a Keycloak group or composite role/) };
  /** Nothing happened to the user: same direct mappings, same role, no token revoked. */
  async function unchanged(id: string, direct: string[], held: string): Promise<void> {
    expect(await directRoles(id)).toEqual(direct);
    expect(await roles.currentRoleOf(id)).toBe(held);
    expect((await hub.active()).some((r) => r.userId === id)).toBe(false);
  }

  it('a SUPERADMIN through a group is refused (FailedPrecondition) for any lower role, and nothing changes', async () => {
    const group = await newGroup(['SUPERADMIN']);
    const u = await newUser('demote-group-superadmin');
    await kc.console('PUT', `/users/${u.id}/groups/${group}`);
    roles.invalidate();
    for (const to of ['ADMIN', 'USER'] as const) {
      await expect(users.update(u.id, { role: to }, superadmin)).rejects.toMatchObject(refused);
    }
    await unchanged(u.id, [], 'SUPERADMIN');
  });

  it('an ADMIN through a composite role is refused, and nothing changes', async () => {
    const staff = unique('staff');
    await kc.console('POST', '/roles', { name: staff });
    await kc.console('POST', `/roles/${staff}/composites`, [await role('ADMIN')]);
    const u = await newUser('demote-composite-admin');
    await kc.console('POST', `/users/${u.id}/role-mappings/realm`, [await role(staff)]);
    roles.invalidate();
    await expect(users.update(u.id, { role: 'USER', name: 'Renamed' }, superadmin)).rejects.toMatchObject(refused);
    await unchanged(u.id, [], 'ADMIN');
    expect((await users.get(u.id, superadmin)).profile.name).toBe('demote-composite-admin');
  });

  it('an ADMIN mapped directly and through a group is refused: removing the mapping would change nothing', async () => {
    const group = await newGroup(['ADMIN']);
    const u = await newUser('demote-both-admin');
    await kc.console('POST', `/users/${u.id}/role-mappings/realm`, [await role('ADMIN')]);
    await kc.console('PUT', `/users/${u.id}/groups/${group}`);
    roles.invalidate();
    await expect(users.update(u.id, { role: 'USER' }, superadmin)).rejects.toMatchObject(refused);
    await unchanged(u.id, ['ADMIN'], 'ADMIN');
  });

  it('a direct SUPERADMIN who is ADMIN through a group may become ADMIN, not USER', async () => {
    const group = await newGroup(['ADMIN']);
    const u = await newUser('demote-direct-superadmin');
    await kc.console('POST', `/users/${u.id}/role-mappings/realm`, [await role('SUPERADMIN')]);
    await kc.console('PUT', `/users/${u.id}/groups/${group}`);
    roles.invalidate();
    await expect(users.update(u.id, { role: 'USER' }, superadmin)).rejects.toMatchObject(refused);
    await unchanged(u.id, ['SUPERADMIN'], 'SUPERADMIN');

    expect((await users.update(u.id, { role: 'ADMIN' }, superadmin)).role).toBe('ADMIN');
    expect(await roles.currentRoleOf(u.id)).toBe('ADMIN');
    expect(await directRoles(u.id)).toEqual(['ADMIN']);
  });

  it('a SUPERADMIN whose role includes ADMIN (a composite) may become USER: removing its mapping removes both', async () => {
    const u = await newUser('demote-composite-superadmin');
    await kc.console('POST', `/users/${u.id}/role-mappings/realm`, [await role('SUPERADMIN')]);
    await kc.console('POST', '/roles/SUPERADMIN/composites', [await role('ADMIN')]);
    try {
      roles.invalidate();
      expect(await roles.currentRoleOf(u.id)).toBe('SUPERADMIN');
      expect((await users.update(u.id, { role: 'USER' }, superadmin)).role).toBe('USER');
      expect(await roles.currentRoleOf(u.id)).toBe('USER');
      expect(await directRoles(u.id)).toEqual([]);
    } finally {
      await kc.console('DELETE', '/roles/SUPERADMIN/composites', [await role('ADMIN')]);
      roles.invalidate();
    }
  });

  it('a role mapped directly only is demoted as before', async () => {
    const u = await newUser('demote-direct-admin');
    await kc.console('POST', `/users/${u.id}/role-mappings/realm`, [await role('ADMIN')]);
    roles.invalidate();
    expect((await users.update(u.id, { role: 'USER' }, superadmin)).role).toBe('USER');
    expect(await roles.currentRoleOf(u.id)).toBe('USER');
    expect(await directRoles(u.id)).toEqual([]);
  });
});

describe('logout with a refresh token', () => {
  const tokens = () => new KeycloakTokenClient(kc.settings);
  const revokedSessions = async () => new Set((await hub.active()).map((r) => r.sessionId));

  it("ends the other session of the caller named by the token, in Keycloak and for that session's access tokens", async () => {
    const u = await newUser('two-devices');
    const here = await kc.login(u.email, password);
    const there = await kc.login(u.email, password);
    expect(there.sid).not.toBe(here.sid);

    await users.logout({ userId: u.id, role: 'USER' }, here.sid, there.refreshToken);

    const revoked = await revokedSessions();
    expect(revoked.has(here.sid)).toBe(true);
    expect(revoked.has(there.sid)).toBe(true);
    expect((await tokens().refresh(there.refreshToken)).ok).toBe(false);
  });

  it("does nothing with another user's refresh token: their session lives on", async () => {
    const a = await newUser('caller');
    const b = await newUser('bystander');
    const mine = await kc.login(a.email, password);
    const theirs = await kc.login(b.email, password);

    await users.logout({ userId: a.id, role: 'USER' }, mine.sid, theirs.refreshToken);

    const revoked = await revokedSessions();
    expect(revoked.has(mine.sid)).toBe(true);
    expect(revoked.has(theirs.sid)).toBe(false);
    expect((await hub.active()).some((r) => r.userId === b.id)).toBe(false);
    expect((await tokens().refresh(theirs.refreshToken)).ok).toBe(true);
  });

  it('revokes no session for a refresh token Keycloak refuses (a forged one naming the caller)', async () => {
    const u = await newUser('forger');
    const victim = await newUser('victim');
    const mine = await kc.login(u.email, password);
    const theirs = await kc.login(victim.email, password);
    const forged = ['eyJhbGciOiJIUzUxMiJ9', Buffer.from(JSON.stringify({ sub: u.id, sid: theirs.sid, typ: 'Refresh' })).toString('base64url'), 'c2ln'].join('.');

    await users.logout({ userId: u.id, role: 'USER' }, mine.sid, forged);

    expect((await revokedSessions()).has(theirs.sid)).toBe(false);
    expect((await tokens().refresh(theirs.refreshToken)).ok).toBe(true);
  });
});

describe('how long revocations are kept', () => {
  afterEach(async () => {
    await kc.console('PUT', '', { accessTokenLifespan: 3600 });
  });

  it('follows the longest access-token lifespan set in Keycloak, the realm’s or a client’s, and keeps the revocations in force that long', async () => {
    expect(await keycloak.longestAccessTokenLifespan()).toBe(3600);
    const warnings: string[] = [];
    const lifetime = new TokenLifetime({
      configuredSeconds: 3600,
      keycloak,
      onLonger: async (seconds) => void (await hub.keepFor(seconds)),
      logger: { ...logger, warn: (_: unknown, msg: string) => void warnings.push(msg), info: () => undefined } as never,
    });
    const u = await newUser('lifespan');
    await hub.revokeUser(u.id);
    const expiryOf = async () => (await hub.active()).find((r) => r.userId === u.id)!;
    const before = await expiryOf();
    expect(before.expiresAt.getTime() - before.notBefore.getTime()).toBeLessThanOrEqual((3600 + 61) * 1000);

    // Keycloak as shipped: nothing changes.
    await lifetime.refresh();
    expect(lifetime.seconds()).toBe(3600);
    expect((await expiryOf()).expiresAt).toEqual(before.expiresAt);
    expect(warnings).toEqual([]);

    // An operator raises the realm's lifespan in the console.
    await kc.console('PUT', '', { accessTokenLifespan: 4 * 3600 });
    await lifetime.refresh();
    expect(lifetime.seconds()).toBe(4 * 3600);
    expect((await expiryOf()).expiresAt.getTime()).toBe(before.notBefore.getTime() + (4 * 3600 + 60) * 1000);
    expect(warnings).toHaveLength(1);

    // A client of its own with a longer one.
    const { client } = await kc.newClientRole(`long-lived-${randomUUID().slice(0, 8)}`, []);
    const representation = await kc.console<{ attributes?: Record<string, string> }>('GET', `/clients/${client}`);
    await kc.console('PUT', `/clients/${client}`, { ...representation, attributes: { ...representation.attributes, 'access.token.lifespan': String(6 * 3600) } });
    expect(await keycloak.longestAccessTokenLifespan()).toBe(6 * 3600);
    await lifetime.refresh();
    expect(lifetime.seconds()).toBe(6 * 3600);
    expect((await expiryOf()).expiresAt.getTime()).toBe(before.notBefore.getTime() + (6 * 3600 + 60) * 1000);
    await kc.console('DELETE', `/clients/${client}`);

    // Lowered again: tokens issued meanwhile still live, so nothing shrinks.
    await kc.console('PUT', '', { accessTokenLifespan: 3600 });
    await lifetime.refresh();
    expect(lifetime.seconds()).toBe(6 * 3600);
    expect(warnings).toHaveLength(2);
  });
});
