import type { Logger } from '@gef/common';
import { SupervisedWorker, taskQueues, type TemporalSettings } from '@gef/common/temporal';
import type { MikroORM } from '@mikro-orm/postgresql';
import { createExecutionActivities } from './activities';

/** The execution service's Temporal worker: the activities that change execution state. */
export function createWorker(settings: TemporalSettings, orm: MikroORM, logger: Logger) {
  return new SupervisedWorker(
    settings,
    { taskQueue: taskQueues.execution, activities: createExecutionActivities(orm) },
    logger,
  );
}
