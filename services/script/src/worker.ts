import type { Logger } from '@gef/common';
import { SupervisedWorker, type TemporalSettings } from '@gef/common/temporal';
import { taskQueues } from '@gef/workflows/task-queues';
import { createScriptActivities } from './activities';
import type { ScriptDeps } from './domain/deps';

/** The script service's Temporal worker: the buildScript workflow and the activities that change script state. */
export function createWorker(settings: TemporalSettings, deps: ScriptDeps, logger: Logger) {
  return new SupervisedWorker(
    settings,
    {
      taskQueue: taskQueues.script,
      workflowsPath: require.resolve('@gef/workflows'),
      activities: createScriptActivities(deps),
    },
    logger,
  );
}
