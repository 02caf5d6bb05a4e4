import type { Logger } from '@gef/common';
import { SupervisedWorker, taskQueues, type TemporalSettings } from '@gef/common/temporal';
import { createRunnerActivities } from './activities';
import type { RunnerConfig } from './config';

/** The runner's Temporal worker. */
export function createWorker(settings: TemporalSettings, config: RunnerConfig, logger: Logger) {
  return new SupervisedWorker(
    settings,
    {
      taskQueue: taskQueues.runner,
      activities: createRunnerActivities({ python: config.PYTHON }),
      maxConcurrentActivityTaskExecutions: config.RUNNER_CONCURRENCY,
    },
    logger,
  );
}
