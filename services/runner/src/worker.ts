import { create } from '@bufbuild/protobuf';
import { serviceClient, type Logger } from '@gef/common';
import { SupervisedWorker, taskQueues, type TemporalSettings } from '@gef/common/temporal';
import { script } from '@gef/protos';
import { createRunnerActivities } from './activities';
import type { RunnerConfig } from './config';
import { environmentSettings } from './environments/settings';

/** The runner's Temporal worker. */
export function createWorker(settings: TemporalSettings, config: RunnerConfig, logger: Logger) {
  const scripts = serviceClient(script.ScriptService, config.SCRIPT_SERVICE_URL);
  return new SupervisedWorker(
    settings,
    {
      taskQueue: taskQueues.runner,
      activities: createRunnerActivities({
        python: config.PYTHON,
        environments: environmentSettings(config),
        appendBuildLog: async (ref, lines) => {
          await scripts.appendBuildLog(create(script.AppendBuildLogRequestSchema, { ...ref, lines }));
        },
        logger,
      }),
      maxConcurrentActivityTaskExecutions: config.RUNNER_CONCURRENCY,
    },
    logger,
  );
}
