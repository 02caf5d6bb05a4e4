/**
 * The user service's mail activities: an e-mail whose recipient the mail server refused for
 * good (5xx to RCPT TO) fails without a retry, naming the reply code only; any other failure,
 * a login or policy refusal that holds for every e-mail included, is retried as it was.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { createUserActivities } from '../src/activities';
import type { ExecutionNotices } from '../src/domain/execution-notices';
import type { PasswordLinks } from '../src/domain/password-links';

function activitiesFailingWith(err: unknown) {
  const fail = async () => {
    throw err;
  };
  return createUserActivities(
    {} as never,
    {} as never,
    {} as never,
    { executionFinished: fail } as unknown as ExecutionNotices,
    { deliver: fail } as unknown as PasswordLinks,
  );
}

const notice = { userId: 'u', executionId: 'e', scriptId: 's', status: 'FINISHED' } as const;
const request = { userId: 'u', purpose: 'reset', requestId: 'r' } as const;

it.each([550, 554])('an e-mail refused for good (SMTP %i) is not retried, and its failure names no address', async (responseCode) => {
  const refused = Object.assign(new Error('550 5.1.1 <nobody@example.org>: Recipient address rejected'), { responseCode, code: 'EENVELOPE', command: 'RCPT TO' });
  const activities = activitiesFailingWith(refused);
  for (const call of [() => activities.notifyExecutionFinished(notice), () => activities.sendPasswordLink(request)]) {
    const err = await call().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ nonRetryable: true, type: 'MailRefused', message: `the mail server refused the e-mail for good (SMTP ${responseCode})` });
    expect((err as Error).message).not.toContain('example.org');
  }
});

it.each([
  ['a refusal for now (SMTP 451)', Object.assign(new Error('451 try later'), { responseCode: 451, code: 'EENVELOPE', command: 'RCPT TO' })],
  // Refusals that hold for every e-mail: an operator mends them, and the retry gets through.
  ['a login refused (SMTP 535)', Object.assign(new Error('535 5.7.8 Authentication failed'), { responseCode: 535, code: 'EAUTH', command: 'AUTH PLAIN' })],
  ['a login asked for (SMTP 530)', Object.assign(new Error('530 5.7.0 Authentication required'), { responseCode: 530, code: 'EENVELOPE', command: 'MAIL FROM' })],
  ['the message refused (SMTP 554 after DATA)', Object.assign(new Error('554 5.7.1 Message refused'), { responseCode: 554, code: 'EMESSAGE', command: 'DATA' })],
  ['a server away', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })],
])('%s is retried: the failure is passed on as it is', async (_what, failure) => {
  const activities = activitiesFailingWith(failure);
  await expect(activities.sendPasswordLink(request)).rejects.toBe(failure);
  await expect(activities.notifyExecutionFinished(notice)).rejects.toBe(failure);
});
