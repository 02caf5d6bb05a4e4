/**
 * Changes of a user that take several steps in Keycloak and the database, interrupted by a
 * dependency failing half way (real PostgreSQL, a fake Keycloak that fails when told): the
 * request fails, and what the contract promises of it holds all the same, or after a retry.
 * - A role change refuses the old tokens even when the revocation after the change fails
 *   (a retry finds the role changed already, and revokes nothing).
 * - A password reset whose Keycloak steps fail leaves its link usable; a retry does them all.
 * - A password change ends the other sessions before the password changes, so a retry,
 *   which finds the old password wrong once it has changed, is never needed to end them.
 */
import { randomUUID } from 'node:crypto';
import { createLogger, Unavailable } from '@gef/common';
import { unitOfWork } from '@gef/common/orm';
import { tokenDigest } from '../src/domain/password-links';
import type { Actor } from '../src/domain/policy';
import { RoleDirectory } from '../src/domain/role-directory';
import { Users } from '../src/domain/users';
import { UserProfileRepository } from '../src/repositories/user-profile-repository';
import { openTestDatabase } from './support/test-database';

jest.setTimeout(120_000);

const logger = createLogger('user-test', 'silent');
const superadmin: Actor = { userId: randomUUID(), role: 'SUPERADMIN' };

/** Every step taken, in order, by Keycloak and the revocations. */
let steps: string[];
/** Steps that fail the next time they are taken. */
let failing: Set<string>;

function step(name: string): void {
  if (failing.delete(name)) throw new Unavailable(`${name} failed`, 'unavailable');
  steps.push(name);
}

/** One user's account: roles, password, sessions. */
class FakeKeycloak {
  roles = new Map<string, string[]>();
  passwords = new Map<string, string>();
  sessions = new Map<string, string[]>();
  async roleHolders(names: readonly string[]): Promise<Map<string, Set<string>>> {
    return new Map(names.map((name) => [name, new Set([...this.roles].filter(([, r]) => r.includes(name)).map(([id]) => id))]));
  }
  async getUserRealmRoles(id: string) {
    return (this.roles.get(id) ?? []).map((name) => ({ id: name, name }));
  }
  async getUserDirectRealmRoles(id: string) {
    return this.getUserRealmRoles(id);
  }
  async getRealmRole(name: string) {
    return { id: name, name };
  }
  async removeUserRealmRoles(id: string, roles: { name: string }[]) {
    step('remove roles');
    this.roles.set(id, (this.roles.get(id) ?? []).filter((r) => !roles.some((x) => x.name === r)));
  }
  async addUserRealmRoles(id: string, roles: { name: string }[]) {
    step('add roles');
    this.roles.set(id, [...(this.roles.get(id) ?? []), ...roles.map((r) => r.name)]);
  }
  async setPassword(id: string, password: string): Promise<{ ok: true }> {
    step('set password');
    this.passwords.set(id, password);
    return { ok: true };
  }
  async clearBruteForce(): Promise<void> {
    step('clear lockout');
  }
  async logoutUser(id: string): Promise<void> {
    step('log out user');
    this.sessions.set(id, []);
  }
  async userSessions(id: string) {
    return (this.sessions.get(id) ?? []).map((s) => ({ id: s, start: 0, lastAccess: 0 }));
  }
  async deleteSession(sessionId: string): Promise<void> {
    step(`end session ${sessionId}`);
    for (const [id, list] of this.sessions) this.sessions.set(id, list.filter((s) => s !== sessionId));
  }
  async getUser(id: string) {
    return { id, enabled: true };
  }
}

let database: Awaited<ReturnType<typeof openTestDatabase>>;
let keycloak: FakeKeycloak;
let users: Users;

beforeAll(async () => {
  database = await openTestDatabase();
});
afterAll(async () => {
  await database?.close();
});

beforeEach(() => {
  steps = [];
  failing = new Set();
  keycloak = new FakeKeycloak();
  const revocations = {
    revokeUser: async (id: string, options: { wait?: boolean } = {}) => step(`revoke ${id}${options.wait === false ? ' (no wait)' : ''}`),
    revokeSession: async (sessionId: string) => step(`revoke session ${sessionId}`),
  };
  const tokens = {
    login: async (email: string, password: string) => {
      const id = [...keycloak.passwords.keys()].find((k) => email.startsWith(k.slice(0, 8)));
      if (!id || keycloak.passwords.get(id) !== password) return { ok: false, failure: 'invalid_credentials' };
      return { ok: true, tokens: { accessToken: 'a', refreshToken: 'check', expiresIn: 300, userId: id, sessionId: 'check' } };
    },
    logout: async () => true,
  };
  users = new Users({
    orm: database.orm,
    keycloak: keycloak as never,
    tokens: tokens as never,
    passwordLinks: {} as never,
    revocations: revocations as never,
    roles: new RoleDirectory(keycloak, { logger }),
    temporal: {} as never,
    logger,
  });
});

async function newUser(): Promise<{ id: string; email: string }> {
  const id = randomUUID();
  const email = `${id.slice(0, 8)}@example.org`;
  await unitOfWork(database.orm, async (em) => void new UserProfileRepository(em).create({ id, email, name: 'Ada' }));
  keycloak.roles.set(id, []);
  return { id, email };
}

describe('a role change', () => {
  it('refuses the old tokens before the role changes: a revocation failing after it leaves none usable', async () => {
    const u = await newUser();
    failing.add(`revoke ${u.id}`);
    await expect(users.update(u.id, { role: 'ADMIN' }, superadmin)).rejects.toThrow(Unavailable);
    expect(steps).toEqual([`revoke ${u.id} (no wait)`, 'remove roles', 'add roles']);
    expect(keycloak.roles.get(u.id)).toEqual(['ADMIN']);
    // The retry finds the change made: it succeeds without revoking again, and needs not.
    steps = [];
    await expect(users.update(u.id, { role: 'ADMIN' }, superadmin)).resolves.toMatchObject({ role: 'ADMIN' });
    expect(steps).toEqual([]);
  });

  it('revokes again once made, for tokens issued while it was made', async () => {
    const u = await newUser();
    await users.update(u.id, { role: 'ADMIN' }, superadmin);
    expect(steps).toEqual([`revoke ${u.id} (no wait)`, 'remove roles', 'add roles', `revoke ${u.id}`]);
  });
});

describe('a password reset', () => {
  async function linkFor(userId: string): Promise<string> {
    const token = randomUUID();
    await database.orm.em
      .getConnection()
      .execute("insert into password_token (digest, user_id, purpose, expires_at) values (?, ?, 'reset', now() + interval '1 hour')", [tokenDigest(token), userId]);
    return token;
  }

  it.each(['set password', 'clear lockout', 'log out user'])('whose step "%s" fails: the link stays usable, and its retry does every step', async (broken) => {
    const u = await newUser();
    const token = await linkFor(u.id);
    failing.add(broken);
    await expect(users.resetPassword(token, 'New-Passw0rd!x')).rejects.toThrow(Unavailable);
    steps = [];
    await expect(users.resetPassword(token, 'New-Passw0rd!x')).resolves.toMatchObject({ profile: { id: u.id } });
    expect(steps).toEqual(['set password', 'clear lockout', 'log out user', `revoke ${u.id}`]);
    // Used now.
    await expect(users.resetPassword(token, 'New-Passw0rd!x')).rejects.toThrow('Invalid or expired token');
  });

  it('whose revocation fails: the same', async () => {
    const u = await newUser();
    const token = await linkFor(u.id);
    failing.add(`revoke ${u.id}`);
    await expect(users.resetPassword(token, 'New-Passw0rd!x')).rejects.toThrow(Unavailable);
    steps = [];
    await users.resetPassword(token, 'New-Passw0rd!x');
    expect(steps).toContain(`revoke ${u.id}`);
  });
});

describe('a password change', () => {
  it('ends the other sessions before the password changes: one failing to end leaves the old password, and the retry ends them', async () => {
    const u = await newUser();
    keycloak.passwords.set(u.id, 'Old-Passw0rd!x');
    keycloak.sessions.set(u.id, ['mine', 'phone', 'laptop']);
    failing.add('end session laptop');
    await expect(users.changePassword({ userId: u.id, role: 'USER' }, 'Old-Passw0rd!x', 'New-Passw0rd!x', 'mine')).rejects.toThrow(Unavailable);
    expect(keycloak.passwords.get(u.id)).toBe('Old-Passw0rd!x');
    steps = [];
    await users.changePassword({ userId: u.id, role: 'USER' }, 'Old-Passw0rd!x', 'New-Passw0rd!x', 'mine');
    expect(keycloak.passwords.get(u.id)).toBe('New-Passw0rd!x');
    expect(keycloak.sessions.get(u.id)).toEqual(['mine']);
    expect(steps).toEqual(['end session laptop', 'revoke session laptop', 'set password']);
  });

  it('ends the sessions opened while it was made too', async () => {
    const u = await newUser();
    keycloak.passwords.set(u.id, 'Old-Passw0rd!x');
    keycloak.sessions.set(u.id, ['mine', 'phone']);
    const setPassword = keycloak.setPassword.bind(keycloak);
    keycloak.setPassword = async (id, password) => {
      // Someone with the old password logs in just before it changes.
      keycloak.sessions.set(id, [...(keycloak.sessions.get(id) ?? []), 'late']);
      return setPassword(id, password);
    };
    await users.changePassword({ userId: u.id, role: 'USER' }, 'Old-Passw0rd!x', 'New-Passw0rd!x', 'mine');
    expect(keycloak.sessions.get(u.id)).toEqual(['mine']);
    expect(steps).toEqual(['end session phone', 'revoke session phone', 'set password', 'end session late', 'revoke session late']);
  });
});
