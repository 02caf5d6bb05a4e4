import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { runExecutionWorkflowId, type RunExecutionInput, type StopRequest } from '@gef/workflows';
import { findFreePorts } from '@gef/deploy';
import type { RunLauncher } from '../src/domain/run-launcher';
import { DispatchRepository } from '../src/repositories/dispatch-repository';
import { TemporalRunLauncher } from '../src/runs/temporal-run-launcher';
import { caller, serviceFixture, type ServiceFixture } from './support/service-fixture';
import { startWorkflowStack, stopWorkflowStack, until, withRunWorkers, type WorkflowStack } from './support/workflow-stack';


/** The service's launcher, pointed at Temporal or, while it is "down", at a closed port. */
class SwitchableLauncher implements RunLauncher {
  constructor(public target: RunLauncher) {}

  start(run: RunExecutionInput): Promise<void> {
    return this.target.start(run);
  }

  stop(executionId: string, request: StopRequest): Promise<void> {
    return this.target.stop(executionId, request);
  }

  wake(executionId: string): Promise<void> {
    return this.target.wake(executionId);
  }
}

/**
 * A run that took the user's only slot when accepted is cancelled while Temporal is away;
 * when it is back, the outbox has the run's stop due before its start. The run's workflow
 * must still end at once and give the slot back, so the user's next run goes, with no
 * runner anywhere (a workflow that missed its stop would wait for one to pick the run).
 * Real PostgreSQL, a real Temporal dev server, the real runExecution workflow and the
 * service's own activities.
 */
describe('execution service: a stop due before its start, after an outage', () => {
  let stack: WorkflowStack;
  let f: ServiceFixture;
  let up: RunLauncher;
  let down: RunLauncher;
  let downConnection: Connection;
  const launcher = new SwitchableLauncher(undefined as unknown as RunLauncher);

  beforeAll(async () => {
    stack = await startWorkflowStack('gef_execution_stop_after_start_temporal');
    up = new TemporalRunLauncher(stack.env.client);
    downConnection = Connection.lazy({ address: `127.0.0.1:${(await findFreePorts(1))[0]!}`, interceptors: [] });
    down = new TemporalRunLauncher(new Client({ connection: downConnection, namespace: stack.env.namespace ?? 'default' }));
    launcher.target = up;
    f = await serviceFixture(stack.pg.url, { launcher });
    f.deps.settings.maxConcurrent = 1;
  }, 180_000);

  afterAll(async () => {
    await f?.close();
    await downConnection?.close().catch(() => undefined);
    await stopWorkflowStack(stack ?? {});
  }, 60_000);

  it('ends the cancelled run and gives its slot to the next run', async () => {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId });
    const state = async (id: string) =>
      (await f.orm.em.fork().execute<{ status: string; slot_held: boolean }[]>('select status, slot_held from execution where id = ?', [id]))[0]!;

    await withRunWorkers(stack, f.deps, async () => {
      launcher.target = down;
      const first = (await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} })).execution!;
      expect(await state(first.id)).toMatchObject({ slot_held: true });
      await f.dispatch();
      await f.client.cancelExecution({ id: first.id, caller: caller(userId) });
      const next = (await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} })).execution!;
      await f.dispatch();
      launcher.target = up;
      // The starts failed more often than the stop: the stop's next try comes first.
      await f.orm.em.fork().execute('update execution_stop_dispatch set next_at = now()');
      await f.orm.em.fork().execute("update execution_dispatch set next_at = now() + interval '300 milliseconds'");
      await f.dispatch();
      await new Promise((r) => setTimeout(r, 400));
      await until('the outbox delivered', async () => {
        await f.dispatch();
        return (await new DispatchRepository().pending(f.orm.em.fork())) === 0;
      });

      await until('the cancelled run gave its slot back', async () => !(await state(first.id)).slot_held);
      const handle = stack.env.client.workflow.getHandle(runExecutionWorkflowId(first.id));
      await until("the cancelled run's workflow ended", async () => (await handle.describe()).status.name !== 'RUNNING');
      expect(await handle.result()).toEqual({ executionId: first.id, status: 'CANCELLED' });
      await until('the next run took the slot', async () => (await state(next.id)).status === 'READY');
      expect(await state(first.id)).toEqual({ status: 'CANCELLED', slot_held: false });
    });
  }, 120_000);
});
