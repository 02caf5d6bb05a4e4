import { CancelledFailure, Context } from '@temporalio/activity';
import type { ExecutionActivities, ExecutionRunActivities } from '@gef/workflows/activities';
import { deleteExecutionsOfUser } from '../domain/delete-executions';
import type { ExecutionDeps } from '../domain/deps';
import { claimSlot, endExecution, releaseSlot } from '../domain/run-slots';

/**
 * Heartbeats a long activity and stops it once Temporal no longer wants it (its attempt
 * timed out, or the workflow was cancelled), so it does not go on beside a retry.
 */
function stillWanted(): void {
  const ctx = Context.current();
  ctx.heartbeat();
  if (ctx.cancellationSignal.aborted) throw new CancelledFailure('the attempt is no longer wanted');
}

/**
 * The execution service's activities, run by its worker on the `gef-execution` task queue:
 * the run path's state changes (local activities of runExecution) and the deleteUser step.
 */
export function createExecutionActivities(deps: Pick<ExecutionDeps, 'orm' | 'runs' | 'logger' | 'runners'>): ExecutionActivities & ExecutionRunActivities {
  return {
    async deleteExecutionsOfUser(userId) {
      const executions = await deleteExecutionsOfUser(deps, userId, stillWanted);
      return { executions };
    },
    claimExecutionSlot: (input) => claimSlot(deps, input),
    releaseExecutionSlot: (input) => releaseSlot(deps, input),
    endExecution: (input) => endExecution(deps, input),
  };
}
