import type { MikroORM } from '@mikro-orm/postgresql';
import { unitOfWork } from '@gef/common/orm';
import type { ScriptActivities } from '@gef/workflows/activities';
import { ScriptRepository } from '../repositories/script-repository';

/** The script service's activities, run by its worker on the `gef-script` task queue. */
export function createScriptActivities(orm: MikroORM): ScriptActivities {
  return {
    async deleteScriptsOfUser(userId) {
      return { scripts: await unitOfWork(orm, (em) => new ScriptRepository(em).deleteByUser(userId)) };
    },
  };
}
