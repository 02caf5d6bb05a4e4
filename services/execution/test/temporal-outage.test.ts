import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { execution } from '@gef/protos';
import { gefStatusKey, runExecutionWorkflowId, type RunExecutionInput, type StopRequest } from '@gef/workflows';
import { findFreePorts } from '@gef/deploy';
import type { RunLauncher } from '../src/domain/run-launcher';
import { TemporalRunLauncher } from '../src/runs/temporal-run-launcher';
import { caller, serviceFixture, type ServiceFixture } from './support/service-fixture';
import { startWorkflowStack, stopWorkflowStack, until as within, withRunWorkers, type WorkflowStack } from './support/workflow-stack';

const S = execution.ExecutionStatus;


/** A local port nothing listens on. */
const closedPort = async (): Promise<number> => (await findFreePorts(1))[0]!;

/** The service's launcher, pointed at Temporal or, while it is "down", at a closed port. */
class SwitchableLauncher implements RunLauncher {
  constructor(
    public target: RunLauncher,
    readonly stops: { executionId: string; request: StopRequest; ok: boolean }[] = [],
  ) {}

  start(run: RunExecutionInput): Promise<void> {
    return this.target.start(run);
  }

  async stop(executionId: string, request: StopRequest): Promise<void> {
    try {
      await this.target.stop(executionId, request);
      this.stops.push({ executionId, request, ok: true });
    } catch (err) {
      this.stops.push({ executionId, request, ok: false });
      throw err;
    }
  }

  wake(executionId: string): Promise<void> {
    return this.target.wake(executionId);
  }
}


/** The result of a run's workflow once it has closed (within 20 s), checked by describing it. */
async function resultOf(env: TestWorkflowEnvironment, executionId: string): Promise<unknown> {
  const handle = env.client.workflow.getHandle(runExecutionWorkflowId(executionId));
  const end = Date.now() + 20_000;
  for (;;) {
    const status = (await handle.describe()).status.name;
    if (status !== 'RUNNING') return handle.result();
    if (Date.now() > end) {
      const events = (await handle.fetchHistory()).events ?? [];
      throw new Error(`the workflow of ${executionId} is still open; its last events: ${events.slice(-5).map((e) => String(e.eventType)).join(', ')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * "No data is lost when Temporal restarts": a run cancelled (or ended from outside) while
 * Temporal does not answer is CANCELLED in the database at once; its workflow is told as
 * soon as Temporal answers again, by the service's dispatcher, so a run waiting for a slot
 * does not wait for ever and a running one is stopped. Real PostgreSQL, a real Temporal dev
 * server, the real runExecution workflow and the service's own activities (no runner polls:
 * a run given to a runner stays scheduled, as with runners that are busy).
 */
describe('execution service: stops while Temporal is down', () => {
  let stack: WorkflowStack;
  let f: ServiceFixture;
  let up: RunLauncher;
  let down: RunLauncher;
  let downConnection: Connection;
  const launcher = new SwitchableLauncher(undefined as unknown as RunLauncher);

  beforeAll(async () => {
    stack = await startWorkflowStack('gef_execution_outage');
    up = new TemporalRunLauncher(stack.env.client);
    // No retrying interceptor: a call to a Temporal that is down fails at once.
    downConnection = Connection.lazy({ address: `127.0.0.1:${await closedPort()}`, interceptors: [] });
    down = new TemporalRunLauncher(new Client({ connection: downConnection, namespace: stack.env.namespace ?? 'default' }));
    launcher.target = up;
    f = await serviceFixture(stack.pg.url, { launcher });
  }, 180_000);

  afterAll(async () => {
    await f?.close();
    await downConnection?.close().catch(() => undefined);
    await stopWorkflowStack(stack ?? {});
  }, 60_000);

  it("ends a waiting run's workflow and stops a running one once Temporal answers again", async () => {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId, version: 1 });
    const state = async (id: string) =>
      (await f.orm.em.fork().execute<{ status: string; queued_at: Date | null }[]>('select status, queued_at from execution where id = ?', [id]))[0]!;
    const until = (what: string, check: () => Promise<boolean>) => within(what, check, 20_000);

    await withRunWorkers(stack, f.deps, async () => {
      // Three runs take the user's three slots (their workflows hand them to runners);
      // the fourth waits for a slot in its workflow.
      const runs = [];
      for (let i = 0; i < 4; i++) {
        runs.push((await f.client.runScript({ caller: caller(userId), idOrSlug: script.scriptId, params: {} })).execution!);
        expect(await f.dispatch()).toBe(true);
      }
      const running = runs[0]!;
      const waiting = runs[3]!;
      await until('the fourth run queued', async () => (await state(waiting.id)).queued_at !== null);
      // A runner takes the first run.
      expect(await f.client.startExecutionAttempt({ executionId: running.id, attempt: 1, runner: 'runner-test' })).toMatchObject({ proceed: true });

      launcher.target = down;
      expect((await f.client.cancelExecution({ id: waiting.id, caller: caller(userId) })).execution).toMatchObject({ status: S.CANCELLED });
      expect((await f.client.cancelExecution({ id: running.id, caller: caller(userId) })).execution).toMatchObject({ status: S.CANCELLING });
      // Temporal does not answer: nothing is told yet.
      await f.dispatch();
      expect(launcher.stops.filter((s) => s.ok)).toEqual([]);

      launcher.target = up;
      // Due again after the retry's backoff.
      await new Promise((r) => setTimeout(r, 600));
      expect(await f.dispatch()).toBe(true);
      for (const id of [waiting.id, running.id]) {
        expect(await resultOf(stack.env, id)).toEqual({ executionId: id, status: 'CANCELLED' });
        const described = await stack.env.client.workflow.getHandle(runExecutionWorkflowId(id)).describe();
        expect(described.typedSearchAttributes.get(gefStatusKey)).toBe('CANCELLED');
      }
      expect((await state(running.id)).status).toBe('CANCELLED');
      // Told again (a second delivery): a workflow that has ended needs nothing.
      await expect(up.stop(waiting.id, { reason: 'cancel', status: 'CANCELLED' })).resolves.toBeUndefined();
      expect(launcher.stops.filter((s) => s.ok).map((s) => s.executionId).sort()).toEqual([waiting.id, running.id].sort());
    });
  }, 120_000);
});
