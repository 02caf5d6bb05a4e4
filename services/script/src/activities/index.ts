import { stillWanted } from '@gef/common/activity';
import type { ScriptActivities } from '@gef/workflows/activities';
import { deleteScriptsOfUser } from '../domain/script-changes';
import { finishScriptBuild, startScriptBuild } from '../domain/script-builds';
import type { ScriptDeps } from '../domain/deps';

/** The script service's activities, run by its worker on the `gef-script` task queue. */
export function createScriptActivities(deps: ScriptDeps): ScriptActivities {
  return {
    async deleteScriptsOfUser(userId) {
      return { scripts: await deleteScriptsOfUser(deps, userId, stillWanted) };
    },
    startScriptBuild: (ref) => startScriptBuild(deps, ref),
    finishScriptBuild: (outcome) => finishScriptBuild(deps, outcome),
  };
}
