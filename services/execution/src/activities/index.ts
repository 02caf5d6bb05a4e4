import type { MikroORM } from '@mikro-orm/postgresql';
import { unitOfWork } from '@gef/common/orm';
import type { ExecutionActivities } from '@gef/workflows/activities';
import { ExecutionRepository } from '../repositories/execution-repository';

/** The execution service's activities, run by its worker on the `gef-execution` task queue. */
export function createExecutionActivities(orm: MikroORM): ExecutionActivities {
  return {
    async deleteExecutionsOfUser(userId) {
      return { executions: await unitOfWork(orm, (em) => new ExecutionRepository(em).deleteByUser(userId)) };
    },
  };
}
