/**
 * Password links against real PostgreSQL: mailed at once when the mail server takes them;
 * handed to Temporal (a fake client here) when it does not, with no token left behind; and
 * the delivery activity mails once per request however often it is retried.
 */
import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { createLogger, Unavailable } from '@gef/common';
import type { PasswordLinkRequest } from '@gef/workflows/activities';
import { PasswordLinks, tokenDigest } from '../src/domain/password-links';
import { UserProfileRepository } from '../src/repositories/user-profile-repository';
import { FakeTemporal } from './support/fake-temporal';
import { openTestDatabase } from './support/test-database';

jest.setTimeout(120_000);

/** A mailer that records the tokens it sends, and fails while `down`. */
class FakeMailer {
  readonly sent: { to: string; purpose: 'set' | 'reset'; token: string }[] = [];
  down = false;
  async sendSetPassword(to: string, _name: string, token: string): Promise<void> {
    this.send(to, 'set', token);
  }
  async sendRecoverPassword(to: string, _name: string, token: string): Promise<void> {
    this.send(to, 'reset', token);
  }
  private send(to: string, purpose: 'set' | 'reset', token: string): void {
    if (this.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    this.sent.push({ to, purpose, token });
  }
}

let database: Awaited<ReturnType<typeof openTestDatabase>> | undefined;
let orm: MikroORM;
let mailer: FakeMailer;
let temporal: FakeTemporal;
let links: PasswordLinks;

beforeAll(async () => {
  database = await openTestDatabase();
  orm = database.orm;
});

beforeEach(() => {
  mailer = new FakeMailer();
  temporal = new FakeTemporal();
  links = new PasswordLinks({ orm, mailer, temporal: temporal as never, logger: createLogger('user-test', 'silent') });
});

afterAll(async () => {
  await database?.close();
});

async function user(): Promise<{ id: string; email: string; name: string }> {
  const id = randomUUID();
  const email = `${id.slice(0, 8)}@example.org`;
  const em = orm.em.fork();
  new UserProfileRepository(em).create({ id, email, name: 'Ada', emailNotificationsEnabled: false });
  await em.flush();
  return { id, email, name: 'Ada' };
}

const tokensOf = (userId: string) =>
  orm.em.getConnection().execute<{ digest: string; purpose: string; request_id: string | null; mailed_at: unknown }[]>('select digest, purpose, request_id, mailed_at from password_token where user_id = ?', [userId]);

describe('PasswordLinks', () => {
  it('mails a link at once, and stores only its digest', async () => {
    const u = await user();
    expect(await links.send(u, 'set')).toBe('sent');
    expect(mailer.sent).toEqual([{ to: u.email, purpose: 'set', token: expect.any(String) }]);
    expect(await tokensOf(u.id)).toEqual([expect.objectContaining({ digest: tokenDigest(mailer.sent[0]!.token), purpose: 'set' })]);
    expect(temporal.started).toEqual([]);
  });

  it('hands the link to Temporal when the mail server does not take it, leaving no token behind', async () => {
    const u = await user();
    mailer.down = true;
    expect(await links.send(u, 'reset')).toBe('later');
    expect(await tokensOf(u.id)).toEqual([]);
    expect(temporal.started).toEqual([{ workflowId: expect.stringMatching(/^password-link-/), args: [{ userId: u.id, purpose: 'reset', requestId: expect.any(String) }] }]);
    expect(JSON.stringify(temporal.started)).not.toMatch(/token/i);
  });

  it('is unavailable (503) when neither the mail server nor Temporal takes it', async () => {
    const u = await user();
    mailer.down = true;
    temporal.down = true;
    await expect(links.send(u, 'set')).rejects.toBeInstanceOf(Unavailable);
    expect(await tokensOf(u.id)).toEqual([]);
  });

  it('delivers once per request: a failed try leaves nothing, a retry after a success sends nothing', async () => {
    const u = await user();
    const request: PasswordLinkRequest = { userId: u.id, purpose: 'set', requestId: randomUUID() };
    mailer.down = true;
    await expect(links.deliver(request)).rejects.toThrow('ECONNREFUSED');
    expect(await tokensOf(u.id)).toEqual([]);
    mailer.down = false;
    expect(await links.deliver(request)).toEqual({ sent: true });
    // The same activity again (its completion lost): no second e-mail, no second token.
    expect(await links.deliver(request)).toEqual({ sent: false });
    expect(mailer.sent).toHaveLength(1);
    const stored = await tokensOf(u.id);
    expect(stored).toEqual([expect.objectContaining({ digest: tokenDigest(mailer.sent[0]!.token), request_id: request.requestId, mailed_at: expect.anything() })]);
  });

  it('replaces the token of a try that stopped before its e-mail went out', async () => {
    const u = await user();
    const request: PasswordLinkRequest = { userId: u.id, purpose: 'reset', requestId: randomUUID() };
    // A try that stored its token and died before mailing it.
    await orm.em
      .getConnection()
      .execute('insert into password_token (digest, user_id, purpose, expires_at, request_id) values (?, ?, ?, ?, ?)', ['0'.repeat(64), u.id, 'reset', new Date(Date.now() + 3600_000), request.requestId]);
    expect(await links.deliver(request)).toEqual({ sent: true });
    expect(await tokensOf(u.id)).toEqual([expect.objectContaining({ digest: tokenDigest(mailer.sent[0]!.token) })]);
  });

  it('mails nobody for a user deleted meanwhile', async () => {
    expect(await links.deliver({ userId: randomUUID(), purpose: 'set', requestId: randomUUID() })).toEqual({ sent: false });
    expect(mailer.sent).toEqual([]);
  });
});
