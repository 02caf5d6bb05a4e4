import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { ExecutionActivities, ScriptActivities, UserActivities } from '../src/activities';
import { deleteUser, deleteUserWorkflowId } from '../src/delete-user';
import { taskQueues } from '../src/task-queues';
import { startWorkflowEnvironment } from './support/workflow-environment';



/**
 * The deleteUser saga with fake steps on each service's task queue: every step runs once
 * in order, and a deletion once begun finishes, whatever cancel an operator sends.
 */
describe('deleteUser workflow', () => {
  let env: TestWorkflowEnvironment;
  let bundle: WorkflowBundleWithSourceMap;

  beforeAll(async () => {
    ({ env, bundle } = await startWorkflowEnvironment());
  }, 120_000);

  afterAll(async () => {
    await env?.teardown();
  });

  it('finishes every step though an operator cancels it halfway', async () => {
    const steps: string[] = [];
    let letGo!: () => void;
    const gate = new Promise<void>((resolve) => (letGo = resolve));
    const user: Pick<UserActivities, 'deleteKeycloakUser' | 'deleteUserProfile'> = {
      deleteKeycloakUser: async (id) => (steps.push(`login ${id}`), { deleted: true }),
      deleteUserProfile: async (id) => (steps.push(`profile ${id}`), { deleted: true }),
    };
    const executions: ExecutionActivities = {
      deleteExecutionsOfUser: async (id) => {
        steps.push(`executions ${id}`);
        await gate;
        return { executions: 4 };
      },
    };
    const scripts: Pick<ScriptActivities, 'deleteScriptsOfUser'> = {
      deleteScriptsOfUser: async (id) => (steps.push(`scripts ${id}`), { scripts: 2 }),
    };
    const workers = await Promise.all([
      Worker.create({ connection: env.nativeConnection, taskQueue: taskQueues.user, workflowBundle: bundle, activities: user }),
      Worker.create({ connection: env.nativeConnection, taskQueue: taskQueues.execution, activities: executions }),
      Worker.create({ connection: env.nativeConnection, taskQueue: taskQueues.script, activities: scripts }),
    ]);
    const userId = 'user-cancelled-halfway';
    const drive = async () => {
      const handle = await env.client.workflow.start(deleteUser, { taskQueue: taskQueues.user, workflowId: deleteUserWorkflowId(userId), args: [{ userId }] });
      while (!steps.includes(`executions ${userId}`)) await new Promise((r) => setTimeout(r, 20));
      await handle.cancel();
      // The cancel reaches the workflow before the step ends.
      await new Promise((r) => setTimeout(r, 500));
      letGo();
      return handle.result();
    };
    const result = await workers.reduce<Promise<Awaited<ReturnType<typeof drive>>>>((body, worker) => worker.runUntil(body), drive());
    expect(result).toEqual({ userId, scripts: 2, executions: 4, keycloakUserDeleted: true, profileDeleted: true });
    expect(steps).toEqual([`login ${userId}`, `executions ${userId}`, `scripts ${userId}`, `profile ${userId}`]);
  }, 60_000);
});
