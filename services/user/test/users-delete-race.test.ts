/**
 * A deletion that meets the deletion already under way (real PostgreSQL, a fake Keycloak):
 * the second DELETE of one user reads the profile, which stays until the delete workflow
 * ends, while that workflow removes the user from Keycloak. Keycloak then refuses the
 * second request's `PUT /users/{id}` (enabled: false) with a 400, not a 404: "Could not
 * update user!" when the deletion commits under the update, or the user's attributes
 * refused half removed. Seen as one HTTP 500 in the OpenAPI fuzz suite; both bodies below
 * are Keycloak 26.5's own, taken from a real stack.
 */
import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { Code } from '@connectrpc/connect';
import { createLogger, toConnectError } from '@gef/common';
import { unitOfWork } from '@gef/common/orm';
import { OutboxDispatcher } from '@gef/common/outbox';
import type { Actor } from '../src/domain/policy';
import { RoleDirectory } from '../src/domain/role-directory';
import { Users } from '../src/domain/users';
import { KeycloakError } from '../src/keycloak/admin-client';
import { UserDeletionDispatchRepository } from '../src/repositories/user-deletion-dispatch-repository';
import { UserProfileRepository } from '../src/repositories/user-profile-repository';
import { openTestDatabase } from './support/test-database';

jest.setTimeout(120_000);

const commitRefused = '{"errorMessage":"Could not update user!"}';
const attributesRefused =
  '{"errors":[{"field":"username","errorMessage":"error-user-attribute-read-only","params":["username"]},{"field":"email","errorMessage":"error-user-attribute-required","params":["email"]}]}';

/** Keycloak's users: `updateUser` answers with `refusals` first (each may remove the user as it fails, as a deletion committing under it does). */
class FakeKeycloak {
  readonly users = new Set<string>();
  readonly refusals: { status: number; body: string; deletes: boolean }[] = [];
  updates = 0;

  async getUserRealmRoles(): Promise<{ id: string; name: string }[]> {
    return [];
  }
  async getUserDirectRealmRoles(): Promise<{ id: string; name: string }[]> {
    return [];
  }
  async roleHolders(names: readonly string[]): Promise<Map<string, Set<string>>> {
    return new Map(names.map((name) => [name, new Set<string>()]));
  }
  async getUser(id: string): Promise<{ id: string; username: string; enabled: boolean } | undefined> {
    return this.users.has(id) ? { id, username: id, enabled: true } : undefined;
  }
  async getRealmRole(name: string): Promise<{ id: string; name: string }> {
    return { id: `role-${name}`, name };
  }
  async removeUserRealmRoles(): Promise<void> {}
  async addUserRealmRoles(id: string): Promise<void> {
    const refusal = this.refusals.shift();
    if (refusal) {
      if (refusal.deletes) this.users.delete(id);
      throw new KeycloakError(refusal.status, 'assign roles', refusal.body);
    }
  }
  async updateUser(id: string): Promise<void> {
    this.updates++;
    const refusal = this.refusals.shift();
    if (refusal) {
      if (refusal.deletes) this.users.delete(id);
      throw new KeycloakError(refusal.status, 'update user', refusal.body);
    }
    if (!this.users.has(id)) throw new KeycloakError(404, 'update user', '{"error":"User not found"}');
  }
}

let db: { orm: MikroORM; close: () => Promise<void> };
let keycloak: FakeKeycloak;
let started: string[];
/** Delete workflows running, by workflow id. */
let running: Set<string>;
let revoked: string[];
let users: Users;
/** The workflows the deletions recorded start (their outbox's dispatcher, run to the end). */
let startedAfterDispatch: () => Promise<string[]>;
const admin: Actor = { userId: randomUUID(), role: 'ADMIN' };

beforeAll(async () => {
  db = await openTestDatabase();
});

afterAll(async () => {
  await db?.close();
});

beforeEach(async () => {
  keycloak = new FakeKeycloak();
  started = [];
  running = new Set();
  revoked = [];
  users = new Users({
    orm: db.orm,
    keycloak: keycloak as never,
    tokens: {} as never,
    passwordLinks: {} as never,
    revocations: { revokeUser: async (id: string) => void revoked.push(id) } as never,
    roles: new RoleDirectory(keycloak),
    temporal: {
      workflow: {
        start: async (_workflow: unknown, options: { workflowId: string }) => {
          started.push(options.workflowId);
          return {};
        },
        getHandle: (workflowId: string) => ({
          describe: async () => {
            if (!running.has(workflowId)) throw Object.assign(new Error('workflow not found'), { name: 'WorkflowNotFoundError' });
            return { status: { name: 'RUNNING' } };
          },
        }),
      },
    } as never,
    logger: createLogger('user-test', 'silent'),
  });
  const dispatcher = new OutboxDispatcher({
    name: 'user deletion dispatcher',
    orm: db.orm,
    store: new UserDeletionDispatchRepository(),
    start: (input) => users.startDeletion(input),
    logger: createLogger('user-test', 'silent'),
  });
  startedAfterDispatch = async () => {
    expect(await dispatcher.drain()).toBe(true);
    return started;
  };
  await db.orm.em.getConnection().execute('delete from user_deletion_dispatch');
});

/** A user with a login in Keycloak and a profile here. */
async function newUser(): Promise<{ id: string; email: string }> {
  const id = randomUUID();
  const email = `race-${id.slice(0, 8)}@example.org`;
  keycloak.users.add(id);
  await unitOfWork(db.orm, async (em) => new UserProfileRepository(em).create({ id, email, name: 'Race' }));
  return { id, email };
}

describe('a deletion racing the deletion of the same user', () => {
  it.each([
    ['the deletion commits under the update', 400, commitRefused],
    ['the user is read half removed', 400, attributesRefused],
    ['Keycloak reports a conflict', 409, '{"errorMessage":"User exists with same username or email"}'],
  ])('Keycloak refusing to disable a user it removes meanwhile (%s) is no failure: the deletion goes on', async (_case, status, body) => {
    const victim = await newUser();
    keycloak.refusals.push({ status, body, deletes: true });
    const view = await users.delete(victim.id, admin);
    expect(view.profile.id).toBe(victim.id);
    expect(revoked).toEqual([victim.id]);
    expect(await startedAfterDispatch()).toEqual([`delete-user-${victim.id}`]);
  });

  it('a refusal for a user Keycloak still holds is tried once more', async () => {
    const victim = await newUser();
    keycloak.refusals.push({ status: 400, body: commitRefused, deletes: false });
    await users.delete(victim.email, admin);
    expect(keycloak.updates).toBe(2);
    expect(await startedAfterDispatch()).toEqual([`delete-user-${victim.id}`]);
  });

  it('a user Keycloak refuses twice while its deletion runs (the removal not committed when asked) is no failure', async () => {
    const victim = await newUser();
    running.add(`delete-user-${victim.id}`);
    keycloak.refusals.push({ status: 400, body: commitRefused, deletes: false }, { status: 400, body: commitRefused, deletes: false });
    const view = await users.delete(victim.id, admin);
    expect(view.profile.id).toBe(victim.id);
    expect(await startedAfterDispatch()).toEqual([`delete-user-${victim.id}`]);
  });

  it('a user Keycloak keeps refusing to disable is still a failure, not hidden, and is not deleted later', async () => {
    const victim = await newUser();
    keycloak.refusals.push({ status: 400, body: commitRefused, deletes: false }, { status: 400, body: commitRefused, deletes: false });
    const err = await users.delete(victim.id, admin).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KeycloakError);
    expect(toConnectError(err).code).toBe(Code.Internal);
    // Nothing changed in Keycloak: the deletion recorded first is withdrawn.
    expect(await startedAfterDispatch()).toEqual([]);
    expect(await db.orm.em.getConnection().execute('select 1 from user_deletion_dispatch where user_id = ?', [victim.id])).toEqual([]);
  });
});

describe('a change racing the deletion of the same user', () => {
  /** What a SUPERADMIN's role change of a new user throws when Keycloak refuses it once (removing the user as it does, or not). */
  async function refusedRoleChange(deletes: boolean): Promise<unknown> {
    const victim = await newUser();
    keycloak.refusals.push({ status: 400, body: commitRefused, deletes });
    return users.update(victim.id, { role: 'ADMIN' }, { userId: randomUUID(), role: 'SUPERADMIN' }).then(
      () => undefined,
      (e: unknown) => e,
    );
  }

  it('Keycloak refusing a role change for a user it removes meanwhile is a 404, not a failure', async () => {
    expect(toConnectError(await refusedRoleChange(true)).code).toBe(Code.NotFound);
  });

  it('a refusal for a user Keycloak still holds is still an error', async () => {
    expect(await refusedRoleChange(false)).toBeInstanceOf(KeycloakError);
  });
});
