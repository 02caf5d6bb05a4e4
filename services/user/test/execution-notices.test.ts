/**
 * The terminal-status e-mails of runs against real PostgreSQL: only to users who opted
 * in, one per execution however often (or concurrently) the notice is asked for, and a
 * notice whose mail failed is sent by a later try.
 */
import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { createLogger } from '@gef/common';
import { ExecutionNotices } from '../src/domain/execution-notices';
import type { Mailer } from '../src/mail/mailer';
import { UserProfileRepository } from '../src/repositories/user-profile-repository';
import { openTestDatabase } from './support/test-database';

jest.setTimeout(120_000);

type Sent = { to: string; executionId: string; status: string; scriptName?: string };

/**
 * A mailer that records what it sends, and fails while `down` (the relay unreachable: the
 * e-mail certainly not sent) or `lostAnswer` (a timeout after the message: it may have gone).
 */
class FakeMailer {
  readonly sent: Sent[] = [];
  down = false;
  lostAnswer = false;
  async sendExecutionFinished(to: string, _name: string, run: { executionId: string; scriptName?: string; status: string }): Promise<void> {
    await new Promise((r) => setTimeout(r, 20));
    if (this.down) throw Object.assign(new Error('SMTP relay unreachable'), { code: 'ECONNREFUSED' });
    if (this.lostAnswer) throw Object.assign(new Error('Timeout'), { code: 'ETIMEDOUT' });
    this.sent.push({ to, executionId: run.executionId, status: run.status, ...(run.scriptName ? { scriptName: run.scriptName } : {}) });
  }
}

let database: Awaited<ReturnType<typeof openTestDatabase>> | undefined;
let orm: MikroORM;
let mailer: FakeMailer;
let notices: ExecutionNotices;

beforeAll(async () => {
  database = await openTestDatabase();
  orm = database.orm;
  const logger = createLogger('user-test', 'silent');
  mailer = new FakeMailer();
  notices = new ExecutionNotices({ orm, mailer: mailer as unknown as Mailer, logger });
});

afterAll(async () => {
  await database?.close();
});

async function profile(optedIn: boolean): Promise<{ id: string; email: string }> {
  const id = randomUUID();
  const email = `${id.slice(0, 8)}@example.org`;
  const em = orm.em.fork();
  new UserProfileRepository(em).create({ id, email, name: 'Ada', emailNotificationsEnabled: optedIn });
  await em.flush();
  return { id, email };
}

const notice = (userId: string, executionId = randomUUID(), status = 'FINISHED') => ({ userId, executionId, scriptId: randomUUID(), scriptName: 'NDVI trends', status });

describe('ExecutionNotices', () => {
  it('mails a user who opted in, once per execution however often it is asked', async () => {
    const user = await profile(true);
    const n = notice(user.id);
    expect(await notices.executionFinished(n)).toBe(true);
    expect(await notices.executionFinished(n)).toBe(false);
    expect(await notices.executionFinished({ ...n, status: 'FAILED' })).toBe(false);
    expect(mailer.sent.filter((m) => m.executionId === n.executionId)).toEqual([{ to: user.email, executionId: n.executionId, status: 'FINISHED', scriptName: 'NDVI trends' }]);
  });

  it('sends one mail when the same notice is asked for concurrently', async () => {
    const user = await profile(true);
    const n = notice(user.id, randomUUID(), 'FAILED');
    const results = await Promise.all(Array.from({ length: 5 }, () => notices.executionFinished(n)));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(mailer.sent.filter((m) => m.executionId === n.executionId)).toHaveLength(1);
  });

  it('mails nobody who did not opt in, and no unknown user', async () => {
    const user = await profile(false);
    expect(await notices.executionFinished(notice(user.id))).toBe(false);
    expect(await notices.executionFinished(notice(randomUUID()))).toBe(false);
    expect(mailer.sent.filter((m) => m.to === user.email)).toEqual([]);
  });

  it('lets a later try send a notice whose mail failed', async () => {
    const user = await profile(true);
    const n = notice(user.id, randomUUID(), 'CANCELLED');
    mailer.down = true;
    await expect(notices.executionFinished(n)).rejects.toThrow('SMTP relay unreachable');
    mailer.down = false;
    expect(await notices.executionFinished(n)).toBe(true);
    expect(mailer.sent.filter((m) => m.executionId === n.executionId)).toEqual([expect.objectContaining({ status: 'CANCELLED' })]);
  });

  it('counts a notice whose mail may have gone out (the answer lost) as sent: no copy on every retry', async () => {
    const user = await profile(true);
    const n = notice(user.id, randomUUID(), 'FINISHED');
    mailer.lostAnswer = true;
    expect(await notices.executionFinished(n)).toBe(true);
    mailer.lostAnswer = false;
    expect(await notices.executionFinished(n)).toBe(false);
    expect(mailer.sent.filter((m) => m.executionId === n.executionId)).toEqual([]);
  });

  it('refuses a status that is not terminal and ids that are not UUIDs', async () => {
    const user = await profile(true);
    await expect(notices.executionFinished(notice(user.id, randomUUID(), 'RUNNING'))).rejects.toThrow(/status must be one of/);
    await expect(notices.executionFinished(notice('me'))).rejects.toThrow(/UUIDs/);
  });
});
