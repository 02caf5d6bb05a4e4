import { stillWanted } from '@gef/common/activity';
import type { ExecutionActivities, ExecutionRunActivities } from '@gef/workflows/activities';
import { deleteExecutionsOfUser } from '../domain/delete-executions';
import type { ExecutionDeps } from '../domain/deps';
import { claimSlot, endExecution, releaseSlot } from '../domain/run-slots';

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
