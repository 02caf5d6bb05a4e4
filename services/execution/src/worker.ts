import type { Logger } from '@gef/common';
import { SupervisedWorker, type TemporalSettings } from '@gef/common/temporal';
import { taskQueues } from '@gef/workflows/task-queues';
import { createExecutionActivities } from './activities';
import type { ExecutionDeps } from './domain/deps';

/** Workflow task polls at once: fewer than the slots, so eager starts find one free. */
const workflowTaskPolls = 4;

/**
 * The execution service's Temporal worker: the runExecution workflows and the activities
 * that change execution state (the run path's run as local activities, beside the workflow).
 */
export function createWorker(settings: TemporalSettings, deps: Pick<ExecutionDeps, 'orm' | 'runs' | 'logger' | 'runners'>, logger: Logger) {
  return new SupervisedWorker(
    settings,
    {
      taskQueue: taskQueues.execution,
      workflowsPath: require.resolve('@gef/workflows'),
      activities: createExecutionActivities(deps),
      maxCachedWorkflows: 2000,
      // Backpressure: no more workflow tasks and claims at once than the database pool (10)
      // serves without a queue. With the SDK's defaults (40 and 100) a burst of runs queued
      // hundreds of claims ahead of the runners' RPCs, workflow tasks outlived their timeout
      // and were done twice; waiting tasks are better kept by Temporal. 1,000 runs at once:
      // 0.6–1.4 → 2.4–4 executions/s on the shared machine.
      maxConcurrentWorkflowTaskExecutions: 8,
      maxConcurrentLocalActivityExecutions: 8,
      // Each poll waiting on Temporal holds a workflow task slot. With the SDK's default of
      // as many polls as slots (up to 10), all 8 were always held, so every start asking for
      // its first task eagerly (see TemporalRunLauncher) was refused one and its task went
      // through the task queue: ~25 ms more per run. Four polls leave four slots free.
      workflowTaskPollerBehavior: { type: 'simple-maximum', maximum: workflowTaskPolls },
    },
    logger,
  );
}
