/**
 * The least a run can be as a Temporal workflow: started, one activity on another task
 * queue (a runner's), completed. The bench's bare Temporal measures how fast the stack's
 * Temporal server turns these over on this machine, with no work inside.
 */
import { proxyActivities } from '@temporalio/workflow';

export const bareActivityQueue = 'gef-bench-bare-activity';

const { touch } = proxyActivities<{ touch(id: string): Promise<string> }>({ taskQueue: bareActivityQueue, startToCloseTimeout: '1m' });

export async function bareRun(id: string): Promise<string> {
  return await touch(id);
}
