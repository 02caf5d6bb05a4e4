/**
 * Password recovery against real PostgreSQL, with a slow mail server and a fake Temporal:
 * the answer, for an account that exists and for one that does not, comes before any
 * e-mail is even begun; the link is then delivered through the outbox and the
 * `sendPasswordLink` workflow, capped per account, and kept until Temporal takes it.
 */
import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { createLogger } from '@gef/common';
import { OutboxDispatcher } from '@gef/common/outbox';
import { passwordLinkWorkflowId } from '@gef/workflows';
import type { PasswordLinkRequest } from '@gef/workflows/activities';
import { maxRecoveryLinks, PasswordLinks } from '../src/domain/password-links';
import { Users } from '../src/domain/users';
import { PasswordLinkDispatchRepository } from '../src/repositories/password-link-dispatch-repository';
import { UserProfileRepository } from '../src/repositories/user-profile-repository';
import { FakeTemporal } from './support/fake-temporal';
import { openTestDatabase } from './support/test-database';

jest.setTimeout(120_000);

const logger = createLogger('user-test', 'silent');

/** What happened, in order: answers and the mail server's work. */
let events: string[];

/** A mail server that takes 500 ms per e-mail. */
class SlowMailer {
  readonly sent: string[] = [];
  async sendSetPassword(): Promise<void> {
    throw new Error('not expected');
  }
  async sendRecoverPassword(to: string): Promise<void> {
    events.push(`mail to ${to} begun`);
    await new Promise((r) => setTimeout(r, 500));
    this.sent.push(to);
    events.push(`mail to ${to} sent`);
  }
}

let database: Awaited<ReturnType<typeof openTestDatabase>> | undefined;
let orm: MikroORM;
let mailer: SlowMailer;
let temporal: FakeTemporal;
let links: PasswordLinks;
let users: Users;
let dispatcher: OutboxDispatcher<PasswordLinkRequest>;

beforeAll(async () => {
  database = await openTestDatabase();
  orm = database.orm;
});
afterAll(async () => {
  await database?.close();
});

beforeEach(async () => {
  events = [];
  mailer = new SlowMailer();
  temporal = new FakeTemporal();
  links = new PasswordLinks({ orm, mailer: mailer as never, temporal: temporal as never, logger });
  users = new Users({
    orm,
    keycloak: {} as never,
    tokens: {} as never,
    passwordLinks: links,
    revocations: {} as never,
    roles: {} as never,
    temporal: {} as never,
    logger,
  });
  dispatcher = new OutboxDispatcher({ name: 'password link dispatcher', orm, store: new PasswordLinkDispatchRepository(), start: (r) => links.startDelivery(r), logger });
  await orm.em.getConnection().execute('delete from password_link_dispatch');
});

async function newUser(): Promise<{ id: string; email: string }> {
  const id = randomUUID();
  const email = `${id.slice(0, 8)}@example.org`;
  const em = orm.em.fork();
  new UserProfileRepository(em).create({ id, email, name: 'Ada' });
  await em.flush();
  return { id, email };
}

/** What the worker does with each workflow started: runs its activity. */
const runWorkflows = async () => {
  const results = [];
  for (const { args } of temporal.started.splice(0)) results.push(await links.deliver(args[0]!));
  return results;
};

describe('POST /user/<id or email>/recover-password', () => {
  it('answers, for an account that exists and one that does not, before any e-mail is begun; the link follows', async () => {
    const u = await newUser();
    await users.recoverPassword(` ${u.email.toUpperCase()} `);
    events.push('answered (exists)');
    await users.recoverPassword('nobody-here@example.org');
    events.push('answered (unknown)');
    expect(events).toEqual(['answered (exists)', 'answered (unknown)']);

    // The outbox starts one delivery, for the account that exists.
    expect(await dispatcher.drain()).toBe(true);
    expect(temporal.started).toEqual([{ workflowId: passwordLinkWorkflowId(temporal.started[0]!.args[0]!.requestId), args: [{ userId: u.id, purpose: 'reset', requestId: expect.any(String) }] }]);
    expect(await runWorkflows()).toEqual([{ sent: true }]);
    expect(events).toEqual(['answered (exists)', 'answered (unknown)', `mail to ${u.email} begun`, `mail to ${u.email} sent`]);
  });

  it('does the same for the account named by its id; keys that name nothing start nothing', async () => {
    const u = await newUser();
    await users.recoverPassword(u.id.toUpperCase());
    for (const key of [randomUUID(), 'not-a-key', '']) await users.recoverPassword(key);
    expect(await dispatcher.drain()).toBe(true);
    expect(temporal.started.map((s) => s.args[0]!.userId)).toEqual([u.id]);
  });

  it(`mails an account at most ${maxRecoveryLinks} links an hour however many ask, under whatever names`, async () => {
    const u = await newUser();
    await Promise.all(Array.from({ length: maxRecoveryLinks + 2 }, (_, i) => users.recoverPassword(i % 2 ? u.id : u.email)));
    expect(await dispatcher.drain()).toBe(true);
    const results = await runWorkflows();
    expect(results.filter((r) => r.sent)).toHaveLength(maxRecoveryLinks);
    expect(mailer.sent).toHaveLength(maxRecoveryLinks);
  });

  it('keeps a request while Temporal does not take it, and starts it once Temporal does', async () => {
    const u = await newUser();
    temporal.down = true;
    await users.recoverPassword(u.email);
    expect(await dispatcher.drain()).toBe(false);
    const [row] = await orm.em.getConnection().execute<{ attempts: number; last_error: string }[]>('select attempts, last_error from password_link_dispatch where user_id = ?', [u.id]);
    expect(row).toMatchObject({ attempts: 1, last_error: 'Temporal unreachable' });

    temporal.down = false;
    await new Promise((r) => setTimeout(r, 600));
    expect(await dispatcher.drain()).toBe(true);
    expect(temporal.started.map((s) => s.args[0]!.userId)).toEqual([u.id]);
    expect(await orm.em.getConnection().execute('select 1 from password_link_dispatch where user_id = ?', [u.id])).toEqual([]);
  });
});
