/**
 * A registration that dies between creating the login in Keycloak and writing the profile
 * (real PostgreSQL, a fake Keycloak that fails when told): its address is not lost for good.
 * While it may still be under way its address is busy; once it counts as dead, the next
 * registration of the address, or the sweep at start, removes the login it left. A login
 * Keycloak had before (an operator's) is never touched.
 */
import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { AlreadyExists, createLogger, Unavailable } from '@gef/common';
import { unitOfWork } from '@gef/common/orm';
import { KeycloakError } from '../src/keycloak/admin-client';
import { registrationAbandonedAfterMs } from '../src/domain/registrations';
import type { Users } from '../src/domain/users';
import { UserProfileRepository } from '../src/repositories/user-profile-repository';
import { openTestDatabase } from './support/test-database';
import { usersOver } from './support/users';

jest.setTimeout(120_000);

const logger = createLogger('user-test', 'silent');

interface Login {
  id: string;
  email: string;
  createdTimestamp: number;
}

/** Keycloak's logins; `answerLost` makes a creation happen without its answer, `away` fails every call. */
class FakeKeycloak {
  logins = new Map<string, Login>();
  answerLost = false;
  away = false;
  private reach(): void {
    if (this.away) throw new Unavailable('Keycloak is away', 'unavailable');
  }
  async createUser(input: { email: string; password?: string }): Promise<string> {
    this.reach();
    if ([...this.logins.values()].some((l) => l.email === input.email)) throw new KeycloakError(409, 'create user', '{"errorMessage":"exists"}');
    if (input.password === 'Refused-By-Keycloak-7') throw new KeycloakError(400, 'create user', '{"field":"password"}');
    const login = { id: randomUUID(), email: input.email, createdTimestamp: Date.now() };
    this.logins.set(login.id, login);
    if (this.answerLost) {
      this.away = true;
      throw new Unavailable('no answer from Keycloak', 'unavailable');
    }
    return login.id;
  }
  async findUserByEmail(email: string) {
    this.reach();
    const login = [...this.logins.values()].find((l) => l.email === email);
    return login && { ...login, username: login.email, enabled: true };
  }
  async deleteUser(id: string): Promise<boolean> {
    this.reach();
    return this.logins.delete(id);
  }
  async roleHolders(names: readonly string[]): Promise<Map<string, Set<string>>> {
    return new Map(names.map((name) => [name, new Set<string>()]));
  }
  async getUserRealmRoles(): Promise<{ id: string; name: string }[]> {
    return [];
  }
  loginOf(email: string): Login | undefined {
    return [...this.logins.values()].find((l) => l.email === email);
  }
}

let db: { orm: MikroORM; close: () => Promise<void> };
let keycloak: FakeKeycloak;
let users: Users;
/** Users whose tokens were refused. */
let revoked: string[];

beforeAll(async () => {
  db = await openTestDatabase();
});
afterAll(async () => {
  await db?.close();
});

beforeEach(() => {
  keycloak = new FakeKeycloak();
  revoked = [];
  users = usersOver(db.orm, keycloak, logger, {
    passwordLinks: { send: async () => 'sent' } as never,
    revocations: { revokeUser: async (id: string) => void revoked.push(id) } as never,
  });
});

let n = 0;
const newEmail = () => `registration-${Date.now()}-${++n}@example.org`;
const register = (email: string, password = 'Correct-Horse-42') => users.create({ email, name: 'Ada', password }, undefined);
const profileOf = (email: string) => unitOfWork(db.orm, (em) => new UserProfileRepository(em).findByEmail(email));
const rowsOf = (email: string) => db.orm.em.fork().execute<{ started_at: Date }[]>('select started_at from user_registration where email = ?', [email]);
/** Dates a registration's row back, as if its request had died that long ago. */
const ageRow = (email: string, ms: number) =>
  db.orm.em.fork().execute('update user_registration set started_at = started_at - make_interval(secs => ?) where email = ?', [ms / 1000, email]);
/** A login Keycloak holds without a profile, created `agoMs` ago. */
function leftLogin(email: string, agoMs: number): Login {
  const login = { id: randomUUID(), email, createdTimestamp: Date.now() - agoMs };
  keycloak.logins.set(login.id, login);
  return login;
}

describe('a registration that dies after Keycloak made the login', () => {
  it('keeps its address busy while it may be under way, then the next registration removes the login it left', async () => {
    const email = newEmail();
    keycloak.answerLost = true;
    await expect(register(email)).rejects.toBeInstanceOf(Unavailable);
    const left = keycloak.loginOf(email)!;
    expect(left).toBeDefined();
    expect(await profileOf(email)).toBeNull();
    expect(await rowsOf(email)).toHaveLength(1);

    // Keycloak is back, but what became of the failed registration is not known yet.
    keycloak.away = false;
    keycloak.answerLost = false;
    await expect(register(email)).rejects.toThrow(/may still be completing: try again in a few minutes/);
    expect(keycloak.logins.has(left.id)).toBe(true);

    await ageRow(email, registrationAbandonedAfterMs + 1000);
    const view = await register(email);
    expect(view.profile.email).toBe(email);
    expect(keycloak.logins.has(left.id)).toBe(false);
    // The left login worked while it was there: its tokens are refused.
    expect(revoked).toEqual([left.id]);
    expect(keycloak.loginOf(email)?.id).toBe(view.profile.id);
    expect(await rowsOf(email)).toHaveLength(0);
  });

  it('when Keycloak answers again at once, the failed registration removes its login itself and frees the address', async () => {
    const email = newEmail();
    // The answer is lost, but Keycloak answers the cleanup.
    const create = keycloak.createUser.bind(keycloak);
    keycloak.createUser = async (input) => {
      await create(input);
      throw new Unavailable('no answer from Keycloak', 'unavailable');
    };
    await expect(register(email)).rejects.toBeInstanceOf(Unavailable);
    expect(keycloak.loginOf(email)).toBeUndefined();
    expect(revoked).toHaveLength(1);
    expect(await rowsOf(email)).toHaveLength(0);
    keycloak.createUser = create;
    expect((await register(email)).profile.email).toBe(email);
  });

  it('when the login is not there yet after a lost answer (Keycloak still making it), keeps the address until the row is dead', async () => {
    const email = newEmail();
    const create = keycloak.createUser.bind(keycloak);
    let late: Promise<string> | undefined;
    keycloak.createUser = async (input) => {
      // The request is given up; Keycloak commits the login a moment later.
      late = new Promise((resolve) => setTimeout(() => resolve(create(input)), 50));
      throw new Unavailable('no answer from Keycloak', 'unavailable');
    };
    await expect(register(email)).rejects.toBeInstanceOf(Unavailable);
    const made = await late!;
    keycloak.createUser = create;
    expect(await rowsOf(email)).toHaveLength(1);
    await expect(register(email)).rejects.toThrow(/may still be completing/);
    await ageRow(email, registrationAbandonedAfterMs + 1000);
    expect((await register(email)).profile.email).toBe(email);
    expect(keycloak.logins.has(made)).toBe(false);
    expect(revoked).toEqual([made]);
  });

  it('a registration so slow that its row was taken over writes no profile for the login removed meanwhile', async () => {
    const email = newEmail();
    const create = keycloak.createUser.bind(keycloak);
    let resume!: () => void;
    const resumed = new Promise<void>((r) => (resume = r));
    let created!: (id: string) => void;
    const made = new Promise<string>((r) => (created = r));
    keycloak.createUser = async (input) => {
      const id = await create(input);
      created(id);
      await resumed; // the request stalls here (a pause of its process, say)
      return id;
    };
    const slow = register(email);
    const stalled = await made;
    keycloak.createUser = create;
    // Past the time a registration may take, the sweep takes its row over and removes its login.
    await ageRow(email, registrationAbandonedAfterMs + 1000);
    await users.registrations.sweep();
    expect(keycloak.logins.has(stalled)).toBe(false);
    resume();
    await expect(slow).rejects.toThrow(/took too long and was given up/);
    expect(await profileOf(email)).toBeNull();
    expect((await register(email)).profile.email).toBe(email);
  });

  it('the sweep at start removes what dead registrations left, and only that', async () => {
    const dead = newEmail();
    const recent = newEmail();
    const operators = newEmail();
    await db.orm.em
      .fork()
      .execute(`insert into user_registration (email, attempt, started_at)
        values (?, gen_random_uuid(), now() - make_interval(secs => ?)), (?, gen_random_uuid(), now()), (?, gen_random_uuid(), now() - make_interval(secs => ?))`, [
        dead,
        (registrationAbandonedAfterMs + 5000) / 1000,
        recent,
        operators,
        (registrationAbandonedAfterMs + 5000) / 1000,
      ]);
    const deadLogin = leftLogin(dead, registrationAbandonedAfterMs);
    const recentLogin = leftLogin(recent, 0);
    // An operator made this login an hour before the registration that then died.
    const operatorsLogin = leftLogin(operators, 3_600_000);

    await users.registrations.sweep();
    expect(keycloak.logins.has(deadLogin.id)).toBe(false);
    expect(keycloak.logins.has(recentLogin.id)).toBe(true);
    expect(keycloak.logins.has(operatorsLogin.id)).toBe(true);
    expect(await rowsOf(dead)).toHaveLength(0);
    expect(await rowsOf(recent)).toHaveLength(1);
    expect(await rowsOf(operators)).toHaveLength(0);
    // The address of the dead registration can be registered again.
    expect((await register(dead)).profile.email).toBe(dead);
  });

  it('a sweep while Keycloak is away leaves the rows for the next', async () => {
    const email = newEmail();
    await db.orm.em
      .fork()
      .execute('insert into user_registration (email, attempt, started_at) values (?, gen_random_uuid(), now() - make_interval(secs => ?))', [email, (registrationAbandonedAfterMs + 5000) / 1000]);
    const login = leftLogin(email, registrationAbandonedAfterMs);
    keycloak.away = true;
    await expect(users.registrations.sweep()).rejects.toBeInstanceOf(Unavailable);
    keycloak.away = false;
    expect(keycloak.logins.has(login.id)).toBe(true);
    expect(await users.registrations.sweep()).toBeGreaterThanOrEqual(1);
    expect(keycloak.logins.has(login.id)).toBe(false);
  });
});

describe('registrations that end normally', () => {
  it('leave no row, and a registration under way keeps a second one of its address out', async () => {
    const email = newEmail();
    const first = register(email);
    const second = register(email);
    const outcomes = await Promise.allSettled([first, second]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toBeInstanceOf(AlreadyExists);
    expect(await rowsOf(email)).toHaveLength(0);
    expect([...keycloak.logins.values()].filter((l) => l.email === email)).toHaveLength(1);
  });

  it('a registration Keycloak refuses frees its address at once', async () => {
    const email = newEmail();
    await expect(register(email, 'Refused-By-Keycloak-7')).rejects.toThrow(/password policy/);
    expect(await rowsOf(email)).toHaveLength(0);
    expect((await register(email)).profile.email).toBe(email);
  });

  it("an address whose login Keycloak already had is refused, and that login is left alone", async () => {
    const email = newEmail();
    const operators = leftLogin(email, 3_600_000);
    await expect(register(email)).rejects.toBeInstanceOf(AlreadyExists);
    expect(keycloak.logins.has(operators.id)).toBe(true);
    expect(await rowsOf(email)).toHaveLength(0);
  });
});
