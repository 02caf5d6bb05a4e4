/**
 * The user service's mail activities: an e-mail the mail server refused for good (5xx) fails
 * without a retry, naming the reply code only; any other failure is retried as it was.
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
  const refused = Object.assign(new Error('550 5.1.1 <nobody@example.org>: Recipient address rejected'), { responseCode, code: 'EENVELOPE' });
  const activities = activitiesFailingWith(refused);
  for (const call of [() => activities.notifyExecutionFinished(notice), () => activities.sendPasswordLink(request)]) {
    const err = await call().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ nonRetryable: true, type: 'MailRefused', message: `the mail server refused the e-mail for good (SMTP ${responseCode})` });
    expect((err as Error).message).not.toContain('example.org');
  }
});

it.each([
  ['a refusal for now (SMTP 451)', Object.assign(new Error('451 try later'), { responseCode: 451 })],
  ['a server away', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })],
])('%s is retried: the failure is passed on as it is', async (_what, failure) => {
  const activities = activitiesFailingWith(failure);
  await expect(activities.sendPasswordLink(request)).rejects.toBe(failure);
  await expect(activities.notifyExecutionFinished(notice)).rejects.toBe(failure);
});
