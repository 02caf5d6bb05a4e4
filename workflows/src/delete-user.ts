import { CancellationScope, patched, proxyActivities } from '@temporalio/workflow';
import type { ExecutionActivities, ScriptActivities, UserActivities } from './activities';
import { taskQueues } from './task-queues';

export interface DeleteUserInput {
  userId: string;
}

export interface DeleteUserResult {
  userId: string;
  scripts: number;
  executions: number;
  keycloakUserDeleted: boolean;
  profileDeleted: boolean;
}

const retry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' } as const;

const user = proxyActivities<UserActivities>({
  taskQueue: taskQueues.user,
  startToCloseTimeout: '1m',
  retry,
});
/**
 * A user's scripts and runs go in many statements (their logs in chunks): a step may take
 * long, and says it is alive after each; one silent for two minutes is tried again.
 */
const longStep = { startToCloseTimeout: '6h', heartbeatTimeout: '2m', retry } as const;
const scripts = proxyActivities<ScriptActivities>({ taskQueue: taskQueues.script, ...longStep });
const executions = proxyActivities<ExecutionActivities>({ taskQueue: taskQueues.execution, ...longStep });

/**
 * Deletes a user everywhere. Each step is idempotent and retried until it succeeds, so a
 * crash halfway finishes on restart instead of leaving half a user. The login goes first,
 * so nobody can act as the user while the rest is removed; the profile goes last, so the
 * user stays findable until everything else is gone.
 *
 * A deletion, once begun, finishes: the user's login was disabled and their tokens revoked
 * before it started, so an operator's cancel in Temporal is not honoured (it would leave
 * half a user that nothing finishes). (Before this marker, a cancel ended it there.)
 */
export async function deleteUser(input: DeleteUserInput): Promise<DeleteUserResult> {
  if (patched('deletion-ignores-cancel')) return CancellationScope.nonCancellable(() => deleteEverywhere(input));
  return deleteEverywhere(input);
}

async function deleteEverywhere(input: DeleteUserInput): Promise<DeleteUserResult> {
  const keycloak = await user.deleteKeycloakUser(input.userId);
  const ownExecutions = await executions.deleteExecutionsOfUser(input.userId);
  const ownScripts = await scripts.deleteScriptsOfUser(input.userId);
  const profile = await user.deleteUserProfile(input.userId);
  return {
    userId: input.userId,
    scripts: ownScripts.scripts,
    executions: ownExecutions.executions,
    keycloakUserDeleted: keycloak.deleted,
    profileDeleted: profile.deleted,
  };
}

/** The workflow id of a user's deletion: one at a time per user. */
export const deleteUserWorkflowId = (userId: string) => `delete-user-${userId}`;
