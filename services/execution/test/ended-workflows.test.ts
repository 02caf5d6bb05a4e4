import { randomUUID } from 'node:crypto';
import { createLogger, createMetricsRegistry } from '@gef/common';
import { runExecutionWorkflowId } from '@gef/workflows';
import type { RunWorkflowStates } from '../src/domain/run-launcher';
import { EndedWorkflows, workflowEndedReason } from '../src/runs/ended-workflows';
import { TemporalRunLauncher } from '../src/runs/temporal-run-launcher';
import { caller, logRows, serviceFixture, type ServiceFixture } from './support/service-fixture';
import { startWorkflowStack, stopWorkflowStack, until, withRunWorkers, type WorkflowStack } from './support/workflow-stack';

/**
 * Runs whose workflow an operator terminated in Temporal: nothing else ends them or gives
 * their slot back, so without the check they showed RUNNING/READY/CANCELLING for ever and
 * the user's next runs waited for ever. Real PostgreSQL, a real Temporal dev server, the
 * real runExecution workflow and the service's own activities; no runner, so a run that
 * took its slot stays READY until it is ended.
 */
describe('execution service: runs whose workflow ended without ending them', () => {
  let stack: WorkflowStack;
  let f: ServiceFixture;
  let launcher: TemporalRunLauncher;

  beforeAll(async () => {
    stack = await startWorkflowStack('gef_execution_ended_workflows');
    launcher = new TemporalRunLauncher(stack.env.client);
    f = await serviceFixture(stack.pg.url, { launcher });
    f.deps.settings.maxConcurrent = 1;
  }, 180_000);

  afterAll(async () => {
    await f?.close();
    await stopWorkflowStack(stack ?? {});
  }, 60_000);

  const state = async (id: string) =>
    (await f.orm.em.fork().execute<{ status: string; slot_held: boolean }[]>('select status, slot_held from execution where id = ?', [id]))[0]!;
  const registry = createMetricsRegistry('execution-test');
  const check = (workflows: RunWorkflowStates = launcher) =>
    new EndedWorkflows({ orm: f.orm, runs: launcher, workflows, logger: createLogger('execution-test', 'silent'), maxConcurrent: 1, graceSeconds: 0, registry });
  const workers = <T>(work: () => Promise<T>): Promise<T> => withRunWorkers(stack, f.deps, work);
  const run = async (userId: string, scriptId: string) => {
    const id = (await f.client.runScript({ caller: caller(userId), idOrSlug: scriptId, params: {} })).execution!.id;
    await f.dispatch();
    return id;
  };
  const terminate = (id: string) => stack.env.client.workflow.getHandle(runExecutionWorkflowId(id)).terminate('an operator ended it');

  /** A user's run that took its slot, its workflow then terminated, while the workers run. */
  const withTerminatedRun = (work: (userId: string, id: string) => Promise<void>) => {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId });
    return workers(async () => {
      const id = await run(userId, script.scriptId);
      await until('the run took the slot', async () => (await state(id)).status === 'READY');
      await terminate(id);
      await work(userId, id);
    });
  };

  it('ends a terminated run, gives its slot to the next run, and leaves running workflows alone', async () => {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId });
    await workers(async () => {
      const first = await run(userId, script.scriptId);
      const second = await run(userId, script.scriptId);
      await until('the first run took the slot and the second waits', async () => (await state(first)).status === 'READY' && (await state(second)).status === 'PENDING');

      // Both workflows run: nothing to do.
      expect(await check().pass()).toEqual([]);
      expect(await state(first)).toEqual({ status: 'READY', slot_held: true });

      await terminate(first);
      expect(await check().pass()).toEqual([first]);
      expect(await state(first)).toEqual({ status: 'FAILED', slot_held: false });
      const lines = logRows(await f.client.listExecutionLogs({ id: first, caller: caller(userId) }));
      expect(lines.map((l) => l.text)).toContain(workflowEndedReason);
      // The waiting run was woken and took the slot.
      await until('the second run took the slot', async () => (await state(second)).status === 'READY');
      expect(await state(second)).toEqual({ status: 'READY', slot_held: true });

      // A second pass finds nothing more to end; the run ended stays as it is.
      expect(await check().pass()).toEqual([]);
      expect(await state(first)).toEqual({ status: 'FAILED', slot_held: false });
      await terminate(second);
      expect(await check().pass()).toEqual([second]);
      expect(await registry.metrics()).toMatch(/^gef_runs_ended_for_ended_workflows_total\{[^}]*status="FAILED"[^}]*\} 2$/m);
    });
  }, 120_000);

  it('ends a run being cancelled as CANCELLED, and a waiting run whose workflow was terminated', async () => {
    const userId = randomUUID();
    const script = f.scripts.add({ scriptId: randomUUID(), scriptUserId: userId });
    await workers(async () => {
      const first = await run(userId, script.scriptId);
      const second = await run(userId, script.scriptId);
      const third = await run(userId, script.scriptId);
      await until('the first run took the slot', async () => (await state(first)).status === 'READY' && (await state(third)).status === 'PENDING');
      // Cancelling a READY run ends it at once; a RUNNING one is CANCELLING until its workflow ends it.
      await f.orm.em.fork().execute("update execution set status = 'CANCELLING' where id = ?", [first]);
      await Promise.all([terminate(first), terminate(second)]);
      const ended = await check().pass();
      expect(new Set(ended)).toEqual(new Set([first, second]));
      expect(await state(first)).toEqual({ status: 'CANCELLED', slot_held: false });
      expect(await state(second)).toEqual({ status: 'FAILED', slot_held: false });
      await until('the third run took the slot', async () => (await state(third)).status === 'READY');
    });
  }, 120_000);

  it('leaves the runs of a user being deleted to the deletion', async () => {
    await withTerminatedRun(async (userId, first) => {
      // The deleteUser step records the user, then tells the runs to stop and removes them.
      await f.orm.em.fork().execute('insert into deleted_user (user_id) values (?)', [userId]);
      expect(await check().pass()).not.toContain(first);
      expect(await state(first)).toEqual({ status: 'READY', slot_held: true });
    });
  }, 120_000);

  it('changes nothing while Temporal does not answer, and goes round every run over passes', async () => {
    await withTerminatedRun(async (_userId, first) => {
      const away: RunWorkflowStates = { workflowEnded: async () => Promise.reject(new Error('Temporal did not answer')) };
      await expect(check(away).pass()).rejects.toThrow('Temporal did not answer');
      expect(await state(first)).toEqual({ status: 'READY', slot_held: true });

      // One run a pass: the cursor reaches every run that may need ending.
      const asked: string[] = [];
      const counting: RunWorkflowStates = { workflowEnded: async (id) => (asked.push(id), launcher.workflowEnded(id)) };
      const oneByOne = new EndedWorkflows({ orm: f.orm, runs: launcher, workflows: counting, logger: createLogger('execution-test', 'silent'), maxConcurrent: 1, graceSeconds: 0, perPass: 1 });
      const ended: string[] = [];
      for (let i = 0; i < 50 && !ended.includes(first); i++) ended.push(...(await oneByOne.pass()));
      expect(ended).toContain(first);
      expect(new Set(asked).size).toBe(asked.length);
      expect(await state(first)).toEqual({ status: 'FAILED', slot_held: false });
    });
  }, 120_000);
});
