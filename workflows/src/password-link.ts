import { proxyActivities } from '@temporalio/workflow';
import type { PasswordLinkRequest, UserActivities } from './activities';
import { taskQueues } from './task-queues';

/** The workflow id of a password link's delivery (one per request). */
export const passwordLinkWorkflowId = (requestId: string) => `password-link-${requestId}`;

const user = proxyActivities<UserActivities>({
  taskQueue: taskQueues.user,
  startToCloseTimeout: '1m',
  // A link is made when its e-mail goes out (valid an hour from then), so it may wait for a
  // mail server that is away for hours.
  scheduleToCloseTimeout: '24h',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '5m' },
});

/**
 * Delivers a password link whose e-mail could not be sent while the request was answered
 * (the mail server away): retried until it is sent. The link and its token are made by the
 * activity when it sends, so no secret enters the workflow's history.
 */
export async function sendPasswordLink(request: PasswordLinkRequest): Promise<{ sent: boolean }> {
  return await user.sendPasswordLink(request);
}
