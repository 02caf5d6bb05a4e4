import { CancelledFailure, Context } from '@temporalio/activity';
import type { ScriptActivities } from '@gef/workflows/activities';
import { deleteScriptsOfUser } from '../domain/script-changes';
import { finishScriptBuild, startScriptBuild } from '../domain/script-builds';
import type { ScriptDeps } from '../domain/deps';

/**
 * Heartbeats a long activity and stops it once Temporal no longer wants it (its attempt
 * timed out, or the workflow was cancelled), so it does not go on beside a retry.
 */
function stillWanted(): void {
  const ctx = Context.current();
  ctx.heartbeat();
  if (ctx.cancellationSignal.aborted) throw new CancelledFailure('the attempt is no longer wanted');
}

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
