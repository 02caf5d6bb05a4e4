/**
 * Registration's password through the RPC (in memory, real PostgreSQL, a fake Keycloak):
 * no password at all mails a link to set one; any password given, even an empty one, must
 * pass the policy, and a weak one changes nothing.
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

/** Keycloak's users as the admin API would make them: each creation recorded with its password, if any. */
class FakeKeycloak {
  readonly created: { email: string; password?: string }[] = [];
  async createUser(input: { email: string; password?: string }): Promise<string> {
    this.created.push(input);
    return randomUUID();
  }
  async deleteUser(): Promise<boolean> {
    return true;
  }
  async roleHolders(names: readonly string[]): Promise<Map<string, Set<string>>> {
    return new Map(names.map((name) => [name, new Set<string>()]));
  }
  async getUserRealmRoles(): Promise<{ id: string; name: string }[]> {
    return [];
  }
}

let db: { orm: MikroORM; close: () => Promise<void> };
let keycloak: FakeKeycloak;
/** The links mailed: who got one, and for what. */
let links: { email: string; purpose: string }[];
let client: Client<typeof user.UserService>;

beforeAll(async () => {
  db = await openTestDatabase();
});
afterAll(async () => {
  await db?.close();
});

beforeEach(() => {
  keycloak = new FakeKeycloak();
  links = [];
  const users = usersOver(db.orm, keycloak, logger, {
    passwordLinks: {
      send: async (u: { email: string }, purpose: string) => {
        links.push({ email: u.email, purpose });
        return 'sent';
      },
    } as never,
  });
  const transport = createRouterTransport(routes({ users, revocations: {} as never }), { router: { interceptors: [errorInterceptor(logger)] } });
  client = createClient(user.UserService, transport);
});

let n = 0;
const newEmail = () => `register-${Date.now()}-${++n}@example.org`;
const profileOf = (email: string) => unitOfWork(db.orm, (em) => new UserProfileRepository(em).findByEmail(email));

/** The error a call ends with. */
const failure = (call: Promise<unknown>): Promise<ConnectError> =>
  call.then(
    () => {
      throw new Error('the call succeeded');
    },
    (err: unknown) => ConnectError.from(err),
  );

describe('CreateUser: the password', () => {
  it('absent: the user is created without one and gets a link to set it', async () => {
    const email = newEmail();
    const res = await client.createUser(create(user.CreateUserRequestSchema, { email, name: 'Ada' }));
    expect(res.user?.email).toBe(email);
    expect(keycloak.created).toEqual([{ email }]);
    expect(links).toEqual([{ email, purpose: 'set' }]);
  });

  it.each([
    ['empty', ''],
    ['weak', 'short'],
  ])('%s: refused as a weak password (422 at the gateway); nothing is created and no link is mailed', async (_, password) => {
    const email = newEmail();
    const err = await failure(client.createUser(create(user.CreateUserRequestSchema, { email, name: 'Ada', password })));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.metadata.get(reasonHeader)).toBe('weak_password');
    expect(err.rawMessage).toMatch(/at least 12 characters/);
    expect(keycloak.created).toEqual([]);
    expect(links).toEqual([]);
    expect(await profileOf(email)).toBeNull();
  });

  it('strong: the user is created with it and gets no link', async () => {
    const email = newEmail();
    await client.createUser(create(user.CreateUserRequestSchema, { email, name: 'Ada', password: 'Correct-Horse-42' }));
    expect(keycloak.created).toEqual([{ email, password: 'Correct-Horse-42' }]);
    expect(links).toEqual([]);
  });
});
