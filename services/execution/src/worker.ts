import type { Logger } from '@gef/common';
import { SupervisedWorker, type TemporalSettings } from '@gef/common/temporal';
import { taskQueues } from '@gef/workflows/task-queues';
import { createExecutionActivities } from './activities';
import type { ExecutionDeps } from './domain/deps';

/**
 * The execution service's Temporal worker: the runExecution workflows and the activities
 * that change execution state (the run path's run as local activities, beside the workflow).
 */
export function createWorker(settings: TemporalSettings, deps: Pick<ExecutionDeps, 'orm' | 'runs' | 'logger'>, logger: Logger) {
  return new SupervisedWorker(
    settings,
    {
      taskQueue: taskQueues.execution,
      workflowsPath: require.resolve('@gef/workflows'),
      activities: createExecutionActivities(deps),
      maxCachedWorkflows: 2000,
    },
    logger,
  );
}
