/**
 * UpdateUser's "Not updated" through the RPC (in memory, real PostgreSQL, a fake Keycloak):
 * it means that no field that may be updated was given. A profile sent back unchanged (the
 * QGIS plugin's profile dialog saved without edits) is an update that changes nothing.
 */
import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, createRouterTransport, type Client } from '@connectrpc/connect';
import { createLogger, errorInterceptor, reasonHeader } from '@gef/common';
import { unitOfWork } from '@gef/common/orm';
import { user } from '@gef/protos';
import { UserProfileRepository } from '../src/repositories/user-profile-repository';
import { routes } from '../src/routes';
import { openTestDatabase } from './support/test-database';
import { usersOver } from './support/users';

jest.setTimeout(120_000);

const logger = createLogger('user-test', 'silent');

/** Keycloak holding no elevated role; every call that would change it is recorded. */
class FakeKeycloak {
  readonly changes: string[] = [];
  async roleHolders(names: readonly string[]): Promise<Map<string, Set<string>>> {
    return new Map(names.map((name) => [name, new Set<string>()]));
  }
  async getUserRealmRoles(): Promise<{ id: string; name: string }[]> {
    return [];
  }
  async setPassword(id: string): Promise<{ ok: true }> {
    this.changes.push(`password of ${id}`);
    return { ok: true };
  }
  async removeUserRealmRoles(id: string): Promise<void> {
    this.changes.push(`roles of ${id}`);
  }
  async addUserRealmRoles(id: string): Promise<void> {
    this.changes.push(`roles of ${id}`);
  }
  /** Every user's sessions: the one asking and another. */
  async userSessions(): Promise<{ id: string; start: number; lastAccess: number }[]> {
    return ['asking', 'other'].map((id) => ({ id, start: 0, lastAccess: 0 }));
  }
  async deleteSession(id: string): Promise<void> {
    this.changes.push(`session ${id} ended`);
  }
}

let db: { orm: MikroORM; close: () => Promise<void> };
let keycloak: FakeKeycloak;
let client: Client<typeof user.UserService>;

beforeAll(async () => {
  db = await openTestDatabase();
});
afterAll(async () => {
  await db?.close();
});

beforeEach(() => {
  keycloak = new FakeKeycloak();
  const users = usersOver(db.orm, keycloak, logger, { revocations: { revokeSession: async () => undefined } as never });
  const transport = createRouterTransport(routes({ users, revocations: {} as never }), { router: { interceptors: [errorInterceptor(logger)] } });
  client = createClient(user.UserService, transport);
});

const stored = { name: 'Ada Lovelace', country: 'GB', institution: 'Analytical Engines' };

/** A USER with a stored profile, last changed a minute ago. */
async function newUser(): Promise<{ id: string; email: string; updatedAt: Date }> {
  const id = randomUUID();
  const email = `update-${id.slice(0, 8)}@example.org`;
  const updatedAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
  await unitOfWork(db.orm, async (em) => {
    const p = new UserProfileRepository(em).create({ id, email, ...stored });
    p.updatedAt = updatedAt;
  });
  return { id, email, updatedAt };
}

const profileOf = (id: string) => unitOfWork(db.orm, (em) => new UserProfileRepository(em).findById(id));

const caller = (userId: string, role: user.Role) => create(user.CallerSchema, { userId, role });

/** The error a call ends with. */
const failure = (call: Promise<unknown>): Promise<ConnectError> =>
  call.then(
    () => {
      throw new Error('the call succeeded');
    },
    (err: unknown) => ConnectError.from(err),
  );

describe('UpdateUser with the values already stored', () => {
  it('PATCH me: succeeds, answers the profile and changes nothing', async () => {
    const u = await newUser();
    const res = await client.updateUser(create(user.UpdateUserRequestSchema, { idOrEmail: 'me', caller: caller(u.id, user.Role.USER), ...stored }));
    expect(res.user).toMatchObject({ id: u.id, email: u.email, ...stored, role: user.Role.USER });
    expect((await profileOf(u.id))?.updatedAt).toEqual(u.updatedAt);
    expect(keycloak.changes).toEqual([]);
  });

  it('PATCH me with one field, the stored one: succeeds', async () => {
    const u = await newUser();
    const res = await client.updateUser(create(user.UpdateUserRequestSchema, { idOrEmail: 'me', caller: caller(u.id, user.Role.USER), name: stored.name }));
    expect(res.user?.name).toBe(stored.name);
    expect((await profileOf(u.id))?.updatedAt).toEqual(u.updatedAt);
  });

  it("PATCH another user (an ADMIN): the stored profile and the user's own role succeed, changing nothing", async () => {
    const u = await newUser();
    const admin = caller(randomUUID(), user.Role.ADMIN);
    const res = await client.updateUser(create(user.UpdateUserRequestSchema, { idOrEmail: u.email, caller: admin, ...stored, role: user.Role.USER }));
    expect(res.user).toMatchObject({ id: u.id, ...stored, role: user.Role.USER });
    expect((await profileOf(u.id))?.updatedAt).toEqual(u.updatedAt);
    expect(keycloak.changes).toEqual([]);
  });

  it('a changed value is still stored', async () => {
    const u = await newUser();
    const res = await client.updateUser(create(user.UpdateUserRequestSchema, { idOrEmail: 'me', caller: caller(u.id, user.Role.USER), ...stored, institution: 'Royal Society' }));
    expect(res.user?.institution).toBe('Royal Society');
    const p = await profileOf(u.id);
    expect(p?.institution).toBe('Royal Society');
    expect(p!.updatedAt.getTime()).toBeGreaterThan(u.updatedAt.getTime());
  });
});

describe('UpdateUser with nothing to update', () => {
  it.each([
    ['no field at all', {}],
    ['only a role, which is ignored for oneself', { role: user.Role.SUPERADMIN }],
  ])('PATCH me with %s: 400 Not updated', async (_case, fields) => {
    const u = await newUser();
    const err = await failure(client.updateUser(create(user.UpdateUserRequestSchema, { idOrEmail: 'me', caller: caller(u.id, user.Role.USER), ...fields })));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toBe('Not updated');
    expect(err.metadata.get(reasonHeader)).toBe('not_updated');
  });
});

describe('UpdateUser setting the password of oneself', () => {
  const password = 'Brand-New-Passw0rd!';

  it('ends every other session, before the change and after it, and keeps the one that asked', async () => {
    const u = await newUser();
    await client.updateUser(create(user.UpdateUserRequestSchema, { idOrEmail: 'me', caller: caller(u.id, user.Role.USER), password, sessionId: 'asking' }));
    expect(keycloak.changes).toEqual(['session other ended', `password of ${u.id}`, 'session other ended']);
  });

  it('ends none when the request names no session (a gateway of an earlier version), rather than the caller\'s own too', async () => {
    const u = await newUser();
    await client.updateUser(create(user.UpdateUserRequestSchema, { idOrEmail: 'me', caller: caller(u.id, user.Role.USER), password }));
    expect(keycloak.changes).toEqual([`password of ${u.id}`]);
  });
});
