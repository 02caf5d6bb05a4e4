import type { Logger } from '@gef/common';
import { SupervisedWorker, taskQueues, type TemporalSettings } from '@gef/common/temporal';
import type { MikroORM } from '@mikro-orm/postgresql';
import { createScriptActivities } from './activities';

/** The script service's Temporal worker: the activities that change script state. */
export function createWorker(settings: TemporalSettings, orm: MikroORM, logger: Logger) {
  return new SupervisedWorker(
    settings,
    { taskQueue: taskQueues.script, activities: createScriptActivities(orm) },
    logger,
  );
}
