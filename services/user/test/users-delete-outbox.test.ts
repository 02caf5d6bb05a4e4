/**
 * A deletion survives Temporal being away and the request dying halfway (real PostgreSQL,
 * fake Keycloak and Temporal): `DeleteUser` records the deletion in the outbox
 * `user_deletion_dispatch` before it disables the login, and the dispatcher starts the
 * `deleteUser` workflow once Temporal answers, or once the hold of a request that died
 * ends. The workflow's first step revokes the tokens too, for a request that died before.
 */
import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { createLogger, Unavailable } from '@gef/common';
import { unitOfWork } from '@gef/common/orm';
import { OutboxDispatcher } from '@gef/common/outbox';
import type { DeleteUserInput } from '@gef/workflows';
import { createUserActivities } from '../src/activities';
import type { Actor } from '../src/domain/policy';
import { RoleDirectory } from '../src/domain/role-directory';
import { deletionHoldMs, Users } from '../src/domain/users';
import { KeycloakError } from '../src/keycloak/admin-client';
import { UserDeletionDispatchRepository } from '../src/repositories/user-deletion-dispatch-repository';
import { UserProfileRepository } from '../src/repositories/user-profile-repository';
import { FakeTemporal } from './support/fake-temporal';
import { openTestDatabase } from './support/test-database';

jest.setTimeout(120_000);

const logger = createLogger('user-test', 'silent');

/** Keycloak's users: which exist and which are disabled; `beforeUpdate` runs inside each update. */
class FakeKeycloak {
  readonly users = new Set<string>();
  readonly disabled = new Set<string>();
  beforeUpdate: (() => Promise<void>) | undefined;

  async getUserRealmRoles(): Promise<{ id: string; name: string }[]> {
    return [];
  }
  async roleHolders(names: readonly string[]): Promise<Map<string, Set<string>>> {
    return new Map(names.map((name) => [name, new Set<string>()]));
  }
  async getUser(id: string): Promise<{ id: string; username: string; enabled: boolean } | undefined> {
    return this.users.has(id) ? { id, username: id, enabled: !this.disabled.has(id) } : undefined;
  }
  async updateUser(id: string, changes: { enabled?: boolean }): Promise<void> {
    await this.beforeUpdate?.();
    if (!this.users.has(id)) throw new KeycloakError(404, 'update user', '{"error":"User not found"}');
    if (changes.enabled === false) this.disabled.add(id);
  }
  async deleteUser(id: string): Promise<boolean> {
    return this.users.delete(id);
  }
}

let db: { orm: MikroORM; close: () => Promise<void> };
let orm: MikroORM;
let keycloak: FakeKeycloak;
let temporal: FakeTemporal<DeleteUserInput>;
let revoked: string[];
/** What revokeUser does besides recording (a request dying there never returns). */
let revoke: () => Promise<void>;
let users: Users;
let dispatcher: OutboxDispatcher<DeleteUserInput>;

beforeAll(async () => {
  db = await openTestDatabase();
  orm = db.orm;
});

afterAll(async () => {
  await db?.close();
});

beforeEach(async () => {
  keycloak = new FakeKeycloak();
  temporal = new FakeTemporal<DeleteUserInput>();
  revoked = [];
  revoke = async () => undefined;
  const revocations = {
    revokeUser: async (id: string) => {
      revoked.push(id);
      await revoke();
    },
  };
  users = new Users({
    orm,
    keycloak: keycloak as never,
    tokens: {} as never,
    passwordLinks: {} as never,
    revocations: revocations as never,
    roles: new RoleDirectory(keycloak, { logger }),
    temporal: temporal as never,
    logger,
  });
  dispatcher = new OutboxDispatcher({ name: 'user deletion dispatcher', orm, store: new UserDeletionDispatchRepository(), start: (input) => users.startDeletion(input), logger });
  await orm.em.getConnection().execute('delete from user_deletion_dispatch');
});

/** A USER with a login in Keycloak and a profile here. */
async function newUser(): Promise<{ id: string; email: string; actor: Actor }> {
  const id = randomUUID();
  const email = `outbox-${id.slice(0, 8)}@example.org`;
  keycloak.users.add(id);
  await unitOfWork(orm, async (em) => new UserProfileRepository(em).create({ id, email, name: 'Ada' }));
  return { id, email, actor: { userId: id, role: 'USER' } };
}

/** The user's outbox row: attempts, error, and milliseconds until it is due (negative: due). */
async function rowOf(userId: string): Promise<{ attempts: number; last_error: string | null; due_in_ms: number } | undefined> {
  const rows = await orm.em
    .getConnection()
    .execute<{ attempts: number; last_error: string | null; due_in_ms: string }[]>(
      'select attempts, last_error, extract(epoch from (next_at - now())) * 1000 as due_in_ms from user_deletion_dispatch where user_id = ?',
      [userId],
    );
  return rows[0] && { attempts: rows[0].attempts, last_error: rows[0].last_error, due_in_ms: Number(rows[0].due_in_ms) };
}

const until = async (check: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!check()) throw new Error('condition not met in 5 s');
};

describe('DELETE a user while Temporal is away', () => {
  it('answers with the user as it was once the deletion is recorded; the workflow starts when Temporal is back', async () => {
    const u = await newUser();
    temporal.down = true;
    const view = await users.delete('me', u.actor);
    expect(view.profile).toMatchObject({ id: u.id, email: u.email });
    // Logins and tokens stopped at once; the deletion waits for Temporal, due now.
    expect(keycloak.disabled.has(u.id)).toBe(true);
    expect(revoked).toEqual([u.id]);
    expect(await rowOf(u.id)).toMatchObject({ attempts: 0, last_error: null });
    expect((await rowOf(u.id))!.due_in_ms).toBeLessThanOrEqual(0);

    expect(await dispatcher.drain()).toBe(false);
    expect(await rowOf(u.id)).toMatchObject({ attempts: 1, last_error: 'Temporal unreachable' });
    expect(temporal.started).toEqual([]);

    temporal.down = false;
    await new Promise((r) => setTimeout(r, 600));
    expect(await dispatcher.drain()).toBe(true);
    expect(temporal.options).toEqual([
      { taskQueue: 'gef-user', workflowId: `delete-user-${u.id}`, workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY', args: [{ userId: u.id }] },
    ]);
    expect(await rowOf(u.id)).toBeUndefined();
  });

  it('counts a start Temporal never answers as failed, rows free again, and delivers it once Temporal answers', async () => {
    const u = await newUser();
    await users.delete('me', u.actor);
    // A server that takes the connection and never answers (the client would wait forever).
    const answering = temporal.workflow.start;
    temporal.workflow.start = () => new Promise(() => undefined);
    const patient = new OutboxDispatcher({ name: 'user deletion dispatcher', orm, store: new UserDeletionDispatchRepository(), start: (input) => users.startDeletion(input), logger, startTimeoutMs: 300 });
    try {
      expect(await patient.drain()).toBe(false);
      expect(await rowOf(u.id)).toMatchObject({ attempts: 1, last_error: 'Temporal did not answer a start in time' });
    } finally {
      temporal.workflow.start = answering;
    }
    await new Promise((r) => setTimeout(r, 600));
    expect(await patient.drain()).toBe(true);
    expect(temporal.started).toEqual([{ workflowId: `delete-user-${u.id}`, args: [{ userId: u.id }] }]);
    expect(await rowOf(u.id)).toBeUndefined();
  });

  it('a deletion whose workflow exists already (running, or completed) counts as started', async () => {
    const u = await newUser();
    temporal.existing.add(`delete-user-${u.id}`);
    await users.delete(u.id, { userId: randomUUID(), role: 'ADMIN' });
    expect(await dispatcher.drain()).toBe(true);
    expect(temporal.started).toEqual([]);
    expect(await rowOf(u.id)).toBeUndefined();
  });
});

describe('DELETE a user: the request dies halfway', () => {
  it.each([
    ['before the login is disabled', 'disable'],
    ['after the login is disabled, before the tokens are revoked', 'revoke'],
  ] as const)('%s: the deletion starts when its hold ends, and its first step revokes the tokens', async (_case, where) => {
    const u = await newUser();
    const dies = new Promise<void>(() => undefined);
    let reached = false;
    if (where === 'disable') {
      keycloak.beforeUpdate = async () => {
        reached = true;
        await dies;
      };
    } else {
      revoke = async () => {
        reached = true;
        await dies;
      };
    }
    void users.delete('me', u.actor);
    await until(() => reached);

    // Held while the request may still be at its steps: nothing starts yet.
    const held = (await rowOf(u.id))!;
    expect(held.due_in_ms).toBeGreaterThan(deletionHoldMs - 5_000);
    expect(await dispatcher.drain()).toBe(true);
    expect(temporal.started).toEqual([]);

    // The hold ends: the deletion goes on without the request.
    await orm.em.getConnection().execute("update user_deletion_dispatch set next_at = next_at - ? * interval '1 millisecond' where user_id = ?", [deletionHoldMs, u.id]);
    expect(await dispatcher.drain()).toBe(true);
    expect(temporal.started).toEqual([{ workflowId: `delete-user-${u.id}`, args: [{ userId: u.id }] }]);
    expect(await rowOf(u.id)).toBeUndefined();

    // The workflow's first step: the login goes, and the tokens the request left valid with it.
    revoked.length = 0;
    revoke = async () => undefined;
    const activities = createUserActivities(orm, keycloak as never, { revokeUser: async (id: string) => void revoked.push(id) }, {} as never, {} as never);
    expect(await activities.deleteKeycloakUser(u.id)).toEqual({ deleted: true });
    expect(keycloak.users.has(u.id)).toBe(false);
    expect(revoked).toEqual([u.id]);
  });

  it('does not start the workflow before the request has disabled the login and revoked the tokens', async () => {
    const u = await newUser();
    const seen: string[] = [];
    keycloak.beforeUpdate = async () => {
      await dispatcher.drain();
      seen.push(`disabling; started: ${temporal.started.length}`);
    };
    revoke = async () => {
      await dispatcher.drain();
      seen.push(`revoking; started: ${temporal.started.length}`);
    };
    await users.delete('me', u.actor);
    expect(await dispatcher.drain()).toBe(true);
    expect(seen).toEqual(['disabling; started: 0', 'revoking; started: 0']);
    expect(temporal.started).toEqual([{ workflowId: `delete-user-${u.id}`, args: [{ userId: u.id }] }]);
  });

  it('Keycloak away when the login is to be disabled: the request fails, the tokens stop, and the deletion goes on', async () => {
    const u = await newUser();
    keycloak.beforeUpdate = async () => {
      throw new Unavailable('Keycloak is unavailable', 'unavailable');
    };
    await expect(users.delete('me', u.actor)).rejects.toBeInstanceOf(Unavailable);
    // The call may have reached Keycloak: the deletion recorded is not withdrawn, and is due at once.
    expect(revoked).toEqual([u.id]);
    expect(await dispatcher.drain()).toBe(true);
    expect(temporal.started).toEqual([{ workflowId: `delete-user-${u.id}`, args: [{ userId: u.id }] }]);
  });

  it('a request that fails after the deletion is recorded still has it done', async () => {
    const u = await newUser();
    revoke = async () => {
      throw new Error('database away');
    };
    await expect(users.delete('me', u.actor)).rejects.toThrow('database away');
    // The login is disabled already: the deletion must finish, and is due at once.
    expect(keycloak.disabled.has(u.id)).toBe(true);
    expect(await dispatcher.drain()).toBe(true);
    expect(temporal.started).toEqual([{ workflowId: `delete-user-${u.id}`, args: [{ userId: u.id }] }]);
  });
});
