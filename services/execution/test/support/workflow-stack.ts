import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { gefScriptIdKey, gefStatusKey, gefUserIdKey } from '@gef/workflows';
import type { UserActivities } from '@gef/workflows/activities';
import { taskQueues } from '@gef/workflows/task-queues';
import { startTestPostgres, type TestPostgres, testTemporalCli } from '@gef/deploy';
import { createExecutionActivities } from '../../src/activities';
import type { ExecutionDeps } from '../../src/domain/deps';

const quiet = { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** A real PostgreSQL, a real Temporal dev server with the runs' search attributes, and the workflows bundled. */
export interface WorkflowStack {
  pg: TestPostgres;
  env: TestWorkflowEnvironment;
  bundle: WorkflowBundleWithSourceMap;
}

/** Starts the three together (`database`: the test's own PostgreSQL database). */
export async function startWorkflowStack(database: string): Promise<WorkflowStack> {
  Runtime.install({ logger: new DefaultLogger('ERROR', () => undefined) });
  const [pg, env, bundle] = await Promise.all([
    startTestPostgres(database),
    TestWorkflowEnvironment.createLocal({
      server: { executable: { type: 'existing-path', path: testTemporalCli() }, searchAttributes: [gefUserIdKey, gefScriptIdKey, gefStatusKey] },
    }),
    bundleWorkflowCode({ workflowsPath: require.resolve('@gef/workflows'), logger: quiet }),
  ]);
  return { pg, env, bundle };
}

export async function stopWorkflowStack(stack: Partial<WorkflowStack>): Promise<void> {
  await stack.env?.teardown();
  await stack.pg?.stop();
}

/**
 * Runs `work` while the execution service's worker (the runExecution workflows and the
 * service's own activities) and a user-service worker that takes every run-end notice poll.
 * No runner polls: a run handed to the runners stays scheduled, as with busy runners.
 */
export async function withRunWorkers<T>(stack: WorkflowStack, deps: Pick<ExecutionDeps, 'orm' | 'runs' | 'logger' | 'runners'>, work: () => Promise<T>): Promise<T> {
  const worker = await Worker.create({ connection: stack.env.nativeConnection, taskQueue: taskQueues.execution, workflowBundle: stack.bundle, activities: createExecutionActivities(deps) });
  const notify: Pick<UserActivities, 'notifyExecutionFinished'> = { notifyExecutionFinished: async () => ({ sent: true }) };
  const userWorker = await Worker.create({ connection: stack.env.nativeConnection, taskQueue: taskQueues.user, activities: notify });
  return userWorker.runUntil(worker.runUntil(work));
}

/** Checks every 50 ms until `check` holds; fails naming `what` after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not in time`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
