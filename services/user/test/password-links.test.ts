/**
 * Password links against real PostgreSQL: mailed at once when the mail server takes them;
 * handed to Temporal (a fake client here) when it does not, with no token left behind when
 * the e-mail certainly did not go out; and the delivery activity mails once per request
 * however often it is retried. A link whose e-mail may have gone out (the mail server's
 * answer lost, or the process stopped before recording it) keeps working when a retry
 * mails another; using one uses the other.
 */
import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { createLogger, Unavailable } from '@gef/common';
import type { PasswordLinkRequest } from '@gef/workflows/activities';
import { maxRecoveryLinks, PasswordLinks, tokenDigest } from '../src/domain/password-links';
import { Users } from '../src/domain/users';
import { UserProfileRepository } from '../src/repositories/user-profile-repository';
import { FakeTemporal } from './support/fake-temporal';
import { openTestDatabase } from './support/test-database';

jest.setTimeout(120_000);

/**
 * A mailer that records the tokens it sends, and fails while `down` (connection refused:
 * nothing sent) or, `answerLost` times, after the server took the e-mail (its answer lost).
 */
class FakeMailer {
  readonly sent: { to: string; purpose: 'set' | 'reset'; token: string }[] = [];
  down = false;
  answerLost = 0;
  async sendSetPassword(to: string, token: string): Promise<void> {
    this.send(to, 'set', token);
  }
  async sendRecoverPassword(to: string, token: string): Promise<void> {
    this.send(to, 'reset', token);
  }
  private send(to: string, purpose: 'set' | 'reset', token: string): void {
    if (this.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    this.sent.push({ to, purpose, token });
    if (this.answerLost > 0) {
      this.answerLost--;
      throw Object.assign(new Error('Connection closed unexpectedly'), { code: 'ECONNECTION', command: 'CONN' });
    }
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

/** Whether a link's token would be taken by reset-password now. */
const usable = async (token: string) =>
  (await orm.em.getConnection().execute('select 1 from password_token where digest = ? and used_at is null and expires_at > now()', [tokenDigest(token)])).length === 1;

/** Reset-password with a link's token (Keycloak takes any password here). */
const resetWith = (token: string) =>
  new Users({
    orm,
    keycloak: { setPassword: async () => ({ ok: true }), clearBruteForce: async () => undefined, logoutUser: async () => undefined } as never,
    tokens: {} as never,
    passwordLinks: links,
    revocations: { revokeUser: async () => undefined } as never,
    roles: { roleOf: async () => 'USER' } as never,
    temporal: {} as never,
    logger: createLogger('user-test', 'silent'),
  }).resetPassword(token, 'Correct-Horse-42!');

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

  it('keeps the token of a try that stopped before recording its e-mail: that link, maybe mailed, still works', async () => {
    const u = await user();
    const request: PasswordLinkRequest = { userId: u.id, purpose: 'reset', requestId: randomUUID() };
    // A try that stored its token, mailed it, and died before recording that it did.
    const mailedBefore = 'token-mailed-by-a-try-that-died';
    await orm.em
      .getConnection()
      .execute('insert into password_token (digest, user_id, purpose, expires_at, request_id) values (?, ?, ?, ?, ?)', [tokenDigest(mailedBefore), u.id, 'reset', new Date(Date.now() + 3600_000), request.requestId]);
    expect(await links.deliver(request)).toEqual({ sent: true });
    expect(mailer.sent).toHaveLength(1);
    expect(await usable(mailedBefore)).toBe(true);
    expect(await usable(mailer.sent[0]!.token)).toBe(true);
    // Done now: a further retry mails nothing.
    expect(await links.deliver(request)).toEqual({ sent: false });
    expect(mailer.sent).toHaveLength(1);
  });

  it("a retried delivery whose first e-mail went out (the server's answer lost) leaves that link working; using one link uses the other", async () => {
    const u = await user();
    const request: PasswordLinkRequest = { userId: u.id, purpose: 'reset', requestId: randomUUID() };
    mailer.answerLost = 1;
    await expect(links.deliver(request)).rejects.toThrow('Connection closed unexpectedly');
    expect(await links.deliver(request)).toEqual({ sent: true });
    const [first, second] = mailer.sent.map((m) => m.token);
    expect(mailer.sent).toHaveLength(2);
    expect(await usable(first!)).toBe(true);
    expect(await usable(second!)).toBe(true);

    // The user follows the first e-mail: it works, once, and the request's other link is used up with it.
    expect((await resetWith(first!)).profile.id).toBe(u.id);
    await expect(resetWith(first!)).rejects.toMatchObject({ name: 'NotFound' });
    await expect(resetWith(second!)).rejects.toMatchObject({ name: 'NotFound' });
  });

  it("a reset uses up the account's other links: another request's, and the registration's", async () => {
    const u = await user();
    expect(await links.send(u, 'set')).toBe('sent');
    expect(await links.send(u, 'reset')).toBe('sent');
    expect(await links.send(u, 'reset')).toBe('sent');
    const [setLink, first, second] = mailer.sent.map((m) => m.token);
    expect(await usable(second!)).toBe(true);
    expect((await resetWith(first!)).profile.id).toBe(u.id);
    expect(await usable(second!)).toBe(false);
    expect(await usable(setLink!)).toBe(false);
    await expect(resetWith(second!)).rejects.toMatchObject({ name: 'NotFound' });
  });

  it("a registration's link whose e-mail went out though the server's answer was lost keeps working while Temporal mails another", async () => {
    const u = await user();
    mailer.answerLost = 1;
    expect(await links.send(u, 'set')).toBe('later');
    const [first] = mailer.sent.map((m) => m.token);
    expect(await usable(first!)).toBe(true);
    // The workflow delivers the same request: a second link, the first one still valid.
    const request = temporal.started[0]!.args[0]!;
    expect(await tokensOf(u.id)).toEqual([expect.objectContaining({ digest: tokenDigest(first!), request_id: request.requestId, mailed_at: null })]);
    expect(await links.deliver(request)).toEqual({ sent: true });
    expect(await usable(first!)).toBe(true);
    expect(await usable(mailer.sent[1]!.token)).toBe(true);
  });

  it(`counts a request retried after lost answers once towards the ${maxRecoveryLinks} an hour`, async () => {
    const u = await user();
    for (let i = 0; i < maxRecoveryLinks - 1; i++) expect(await links.deliver({ userId: u.id, purpose: 'reset', requestId: randomUUID() })).toEqual({ sent: true });
    const retried: PasswordLinkRequest = { userId: u.id, purpose: 'reset', requestId: randomUUID() };
    mailer.answerLost = 2;
    await expect(links.deliver(retried)).rejects.toThrow();
    await expect(links.deliver(retried)).rejects.toThrow();
    expect(await links.deliver(retried)).toEqual({ sent: true });
    // That was the fifth request: a sixth gets nothing.
    expect(await links.deliver({ userId: u.id, purpose: 'reset', requestId: randomUUID() })).toEqual({ sent: false });
    expect(mailer.sent).toHaveLength(maxRecoveryLinks + 2);
  });

  it('mails nobody for a user deleted meanwhile', async () => {
    expect(await links.deliver({ userId: randomUUID(), purpose: 'set', requestId: randomUUID() })).toEqual({ sent: false });
    expect(mailer.sent).toEqual([]);
  });
});
