import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type {
  ClaimSlotInput,
  EndExecutionInput,
  ExecutionFinishedNotice,
  ExecutionRunActivities,
  ReleaseSlotInput,
  RunnerRunActivities,
  RunScriptResult,
  UserActivities,
} from '../src/activities';
import {
  gefScriptIdKey,
  gefStatusKey,
  gefUserIdKey,
  runExecution,
  runExecutionWorkflowId,
  slotFreedSignal,
  stopExecutionSignal,
  type RunExecutionInput,
  type RunExecutionResult,
} from '../src/run-execution';
import { taskQueues } from '../src/task-queues';
import { startWorkflowEnvironment } from './support/workflow-environment';


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Row {
  userId: string;
  status: string;
  slotHeld: boolean;
  order: number;
  queued: boolean;
}

/**
 * The execution service's slot and state rules, in memory (the real ones are SQL in
 * services/execution/src/domain/run-slots.ts, with the same decisions).
 */
class FakeExecutions {
  readonly rows = new Map<string, Row>();
  readonly calls: string[] = [];
  /** The owners' e-mails asked of the user service, in order. */
  readonly notices: ExecutionFinishedNotice[] = [];
  /** Whether the user service fails every notice (an SMTP relay that is down for good). */
  mailDown = false;
  /** claimExecutionSlot calls, whatever their answer. */
  claims = 0;
  private order = 0;

  add(id: string, userId: string): void {
    this.rows.set(id, { userId, status: 'PENDING', slotHeld: false, order: this.order++, queued: false });
  }

  /** The user service's notice activity (its worker hosts it on `gef-user`). */
  userActivities(): Pick<UserActivities, 'notifyExecutionFinished'> {
    return {
      notifyExecutionFinished: async (notice) => {
        if (this.mailDown) throw ApplicationFailure.nonRetryable('SMTP relay unreachable');
        this.notices.push(notice);
        return { sent: true };
      },
    };
  }

  activities(): ExecutionRunActivities {
    return {
      claimExecutionSlot: async (input: ClaimSlotInput) => {
        this.claims++;
        const row = this.rows.get(input.executionId);
        if (!row) return { outcome: 'ended', status: 'GONE' };
        if (['FINISHED', 'FAILED', 'CANCELLED', 'CANCELLING'].includes(row.status)) return { outcome: 'ended', status: row.status };
        if (row.slotHeld) return { outcome: 'granted' };
        if (input.limit !== null) {
          const mine = [...this.rows.values()].filter((r) => r.userId === input.userId);
          const held = mine.filter((r) => r.slotHeld).length;
          const ahead = mine.filter((r) => r.status === 'PENDING' && !r.slotHeld && r.order < row.order).length;
          if (held + ahead >= input.limit) {
            if (!row.queued) this.calls.push(`queued ${input.executionId}`);
            row.queued = true;
            return { outcome: 'waiting' };
          }
        }
        row.slotHeld = input.limit !== null;
        if (row.status === 'PENDING') row.status = 'READY';
        this.calls.push(`granted ${input.executionId}`);
        return { outcome: 'granted' };
      },
      releaseExecutionSlot: async (input: ReleaseSlotInput) => {
        const row = this.rows.get(input.executionId);
        if (row) row.slotHeld = false;
        const mine = [...this.rows.entries()].filter(([, r]) => r.userId === input.userId);
        const held = mine.filter(([, r]) => r.slotHeld).length;
        const wake = mine
          .filter(([, r]) => r.status === 'PENDING' && !r.slotHeld)
          .sort((a, b) => a[1].order - b[1].order)
          .slice(0, Math.max(0, input.limit - held))
          .map(([id]) => id);
        this.calls.push(`released ${input.executionId}`);
        return { wake };
      },
      endExecution: async (input: EndExecutionInput) => {
        const row = this.rows.get(input.executionId);
        if (!row) return { status: 'GONE' };
        if (['FINISHED', 'FAILED', 'CANCELLED'].includes(row.status)) return { status: row.status };
        row.status = input.status === 'CANCELLED' || row.status === 'CANCELLING' ? 'CANCELLED' : 'FAILED';
        this.calls.push(`ended ${input.executionId} ${row.status}: ${input.reason}`);
        return { status: row.status };
      },
    };
  }
}

type RunnerBehaviour = (executionId: string, attempt: number) => Promise<RunScriptResult>;

/** Resolves when a predicate holds, checking every few milliseconds (test code only). */
async function eventually(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error('condition not reached in time');
    await sleep(10);
  }
}

/**
 * When Temporal recorded the first event of this type (ActivityTaskScheduled, or
 * ActivityTaskCompleted of a scheduled task) of a workflow's `runScript` activity (ms).
 */
async function runScriptEventMs(handle: WorkflowHandle, type: 'ActivityTaskScheduled' | 'ActivityTaskCompleted'): Promise<number> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runScript').map((e) => Number(e.eventId));
  const found =
    type === 'ActivityTaskScheduled'
      ? events.find((e) => scheduled.includes(Number(e.eventId)))
      : events.find((e) => e.activityTaskCompletedEventAttributes && scheduled.includes(Number(e.activityTaskCompletedEventAttributes.scheduledEventId)));
  if (!found?.eventTime) throw new Error(`no ${type} of runScript in the history`);
  return Number(found.eventTime.seconds) * 1000 + Math.floor((found.eventTime.nanos ?? 0) / 1e6);
}

/** A runner activity that heartbeats until told what to do, or until it is cancelled. */
function controllableRun(fake: FakeExecutions, control: Map<string, (result: RunScriptResult) => void>): RunnerBehaviour {
  return async (executionId) => {
    const ctx = Context.current();
    const row = fake.rows.get(executionId)!;
    row.status = 'RUNNING';
    fake.calls.push(`run ${executionId}`);
    const heartbeat = setInterval(() => ctx.heartbeat({ progress: 0 }), 200);
    try {
      return await new Promise<RunScriptResult>((resolve, reject) => {
        control.set(executionId, (result) => {
          row.status = result.status;
          resolve(result);
        });
        ctx.cancellationSignal.addEventListener('abort', () => {
          fake.calls.push(`stopped ${executionId}`);
          reject(new CancelledFailure('cancelled'));
        });
      });
    } finally {
      clearInterval(heartbeat);
    }
  };
}

describe('runExecution workflow', () => {
  let env: TestWorkflowEnvironment;
  let bundle: WorkflowBundleWithSourceMap;
  let n = 0;

  beforeAll(async () => {
    ({ env, bundle } = await startWorkflowEnvironment([gefUserIdKey, gefScriptIdKey, gefStatusKey]));
  }, 120_000);

  afterAll(async () => {
    await env?.teardown();
  });

  const newId = () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`;

  function input(executionId: string, userId: string, over: Partial<RunExecutionInput> = {}): RunExecutionInput {
    return {
      executionId,
      userId,
      scriptId: 'script-1',
      concurrencyLimit: 3,
      timeoutSeconds: 60,
      prepareTimeoutSeconds: 60,
      heartbeatTimeoutSeconds: 5,
      maxAttempts: 3,
      ...over,
    };
  }

  /** Workers for the execution queue (workflow + state) and the runner queue, around `body`. */
  async function withWorkers<T>(fake: FakeExecutions, runner: RunnerBehaviour, body: () => Promise<T>): Promise<T> {
    const executionWorker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: taskQueues.execution,
      workflowBundle: bundle,
      activities: fake.activities(),
    });
    const runnerActivities: RunnerRunActivities = { runScript: (i) => runner(i.executionId, Context.current().info.attempt) };
    const runnerWorker = await Worker.create({ connection: env.nativeConnection, taskQueue: taskQueues.runner, activities: runnerActivities });
    const userWorker = await Worker.create({ connection: env.nativeConnection, taskQueue: taskQueues.user, activities: fake.userActivities() });
    return userWorker.runUntil(runnerWorker.runUntil(executionWorker.runUntil(body())));
  }

  function start(fake: FakeExecutions, run: RunExecutionInput) {
    if (!fake.rows.has(run.executionId)) fake.add(run.executionId, run.userId);
    return env.client.workflow.start(runExecution, {
      taskQueue: taskQueues.execution,
      workflowId: runExecutionWorkflowId(run.executionId),
      args: [run],
      typedSearchAttributes: [
        { key: gefUserIdKey, value: run.userId },
        { key: gefScriptIdKey, value: run.scriptId },
        { key: gefStatusKey, value: 'PENDING' },
      ],
    });
  }

  it('takes a slot (READY), runs on a runner and ends with the runner\'s status and search attributes', async () => {
    const fake = new FakeExecutions();
    const id = newId();
    const result = await withWorkers(
      fake,
      async (executionId) => {
        fake.rows.get(executionId)!.status = 'FINISHED';
        return { outcome: 'FINISHED', status: 'FINISHED' };
      },
      async () => {
        const handle = await start(fake, input(id, 'user-a', { scriptName: 'NDVI trends' }));
        const res = await handle.result();
        const description = await handle.describe();
        return { res, attributes: description.typedSearchAttributes };
      },
    );
    expect(result.res).toEqual<RunExecutionResult>({ executionId: id, status: 'FINISHED' });
    expect(fake.calls).toEqual([`granted ${id}`, `released ${id}`]);
    expect(result.attributes.get(gefStatusKey)).toBe('FINISHED');
    expect(result.attributes.get(gefUserIdKey)).toBe('user-a');
    expect(result.attributes.get(gefScriptIdKey)).toBe('script-1');
    expect(fake.notices).toEqual<ExecutionFinishedNotice[]>([{ userId: 'user-a', executionId: id, scriptId: 'script-1', scriptName: 'NDVI trends', status: 'FINISHED' }]);
  }, 60_000);

  it('makes the fourth run of a USER wait, then starts it within a second of a slot freeing, oldest first', async () => {
    const fake = new FakeExecutions();
    const control = new Map<string, (r: RunScriptResult) => void>();
    const ids = [newId(), newId(), newId(), newId(), newId()];
    await withWorkers(fake, controllableRun(fake, control), async () => {
      const handles = [];
      for (const id of ids) {
        handles.push(await start(fake, input(id, 'user-b')));
        // Accepted in this order (start_date order).
        await eventually(() => fake.calls.some((c) => c.endsWith(id)));
      }
      await eventually(() => control.size === 3);
      expect(fake.calls.filter((c) => c.startsWith('queued'))).toEqual([`queued ${ids[3]}`, `queued ${ids[4]}`]);
      expect([...control.keys()]).toEqual(ids.slice(0, 3));

      control.get(ids[1]!)!({ outcome: 'FINISHED', status: 'FINISHED' });
      await eventually(() => control.has(ids[3]!));
      // Within a second of the run ending, as Temporal recorded both (the test's own polling
      // and a busy machine's delays in reading them are not counted).
      const ended = await runScriptEventMs(handles[1]!, 'ActivityTaskCompleted');
      const next = await runScriptEventMs(handles[3]!, 'ActivityTaskScheduled');
      expect(next - ended).toBeLessThan(1000);
      expect(control.has(ids[4]!)).toBe(false);

      control.get(ids[0]!)!({ outcome: 'FAILED', status: 'FAILED' });
      await eventually(() => control.has(ids[4]!));
      for (const id of [ids[2]!, ids[3]!, ids[4]!]) control.get(id)!({ outcome: 'FINISHED', status: 'FINISHED' });
      const results = await Promise.all(handles.map((h) => h.result()));
      expect(results.map((r) => r.status)).toEqual(['FAILED', 'FINISHED', 'FINISHED', 'FINISHED', 'FINISHED']);
    });
    const runs = fake.calls.filter((c) => c.startsWith('run ')).map((c) => c.slice(4));
    expect(runs).toEqual([ids[0], ids[1], ids[2], ids[3], ids[4]]);
  }, 60_000);

  it('does not limit ADMIN+ runs', async () => {
    const fake = new FakeExecutions();
    const control = new Map<string, (r: RunScriptResult) => void>();
    const ids = [newId(), newId(), newId(), newId(), newId()];
    await withWorkers(fake, controllableRun(fake, control), async () => {
      const handles = await Promise.all(ids.map((id) => start(fake, input(id, 'admin', { concurrencyLimit: null }))));
      await eventually(() => control.size === 5);
      for (const id of ids) control.get(id)!({ outcome: 'FINISHED', status: 'FINISHED' });
      await Promise.all(handles.map((h) => h.result()));
    });
    expect(fake.calls.filter((c) => c.startsWith('queued') || c.startsWith('released'))).toEqual([]);
  }, 60_000);

  it('sends a run that took its slot when accepted straight to a runner, and gives the slot back', async () => {
    const fake = new FakeExecutions();
    const [granted, cancelledEarly] = [newId(), newId()];
    const results = await withWorkers(
      fake,
      async (executionId) => {
        const row = fake.rows.get(executionId)!;
        // What StartExecutionAttempt answers for a run cancelled before its workflow started.
        if (row.status === 'CANCELLED') return { outcome: 'SKIPPED', status: 'CANCELLED' };
        fake.calls.push(`run ${executionId}`);
        row.status = 'FINISHED';
        return { outcome: 'FINISHED', status: 'FINISHED' };
      },
      async () => {
        for (const id of [granted, cancelledEarly]) {
          fake.add(id, 'user-g');
          fake.rows.get(id)!.slotHeld = true;
        }
        fake.rows.get(cancelledEarly)!.status = 'CANCELLED';
        const handles = await Promise.all([granted, cancelledEarly].map((id) => start(fake, input(id, 'user-g', { slotGranted: true }))));
        return Promise.all(handles.map((h) => h.result()));
      },
    );
    expect(results.map((r) => r.status)).toEqual(['FINISHED', 'CANCELLED']);
    // No claim: neither asked for a slot; both gave theirs back.
    expect(fake.claims).toBe(0);
    expect(fake.calls).toContain(`run ${granted}`);
    expect(fake.calls.filter((c) => c.startsWith('released')).sort()).toEqual([`released ${granted}`, `released ${cancelledEarly}`].sort());
    expect([...fake.rows.values()].some((r) => r.slotHeld)).toBe(false);
  }, 60_000);

  it('skips the e-mail step of an owner who had not opted in when the run was accepted', async () => {
    const fake = new FakeExecutions();
    const id = newId();
    const result = await withWorkers(
      fake,
      async (executionId) => {
        fake.rows.get(executionId)!.status = 'FINISHED';
        return { outcome: 'FINISHED', status: 'FINISHED' };
      },
      async () => (await start(fake, input(id, 'user-n', { notifyOwner: false }))).result(),
    );
    expect(result.status).toBe('FINISHED');
    expect(fake.notices).toEqual([]);
  }, 60_000);

  it('ends a waiting run that is cancelled before it starts, and passes its turn on', async () => {
    const fake = new FakeExecutions();
    const control = new Map<string, (r: RunScriptResult) => void>();
    const [first, waiting, next] = [newId(), newId(), newId()];
    await withWorkers(fake, controllableRun(fake, control), async () => {
      const a = await start(fake, input(first, 'user-c', { concurrencyLimit: 1 }));
      await eventually(() => control.has(first));
      const b = await start(fake, input(waiting, 'user-c', { concurrencyLimit: 1 }));
      await eventually(() => fake.calls.includes(`queued ${waiting}`));
      const c = await start(fake, input(next, 'user-c', { concurrencyLimit: 1 }));
      await eventually(() => fake.calls.includes(`queued ${next}`));
      // What CancelExecution does: CANCELLED in the database, then the signal.
      fake.rows.get(waiting)!.status = 'CANCELLED';
      await b.signal(stopExecutionSignal, { reason: 'cancel', status: 'CANCELLED' });
      expect(await b.result()).toEqual({ executionId: waiting, status: 'CANCELLED' });
      control.get(first)!({ outcome: 'FINISHED', status: 'FINISHED' });
      await a.result();
      await eventually(() => control.has(next));
      control.get(next)!({ outcome: 'FINISHED', status: 'FINISHED' });
      await c.result();
    });
    expect(fake.calls).not.toContain(`run ${waiting}`);
  }, 60_000);

  it('stops a running script on cancel, waits for the runner, then records CANCELLED', async () => {
    const fake = new FakeExecutions();
    const control = new Map<string, (r: RunScriptResult) => void>();
    const id = newId();
    const result = await withWorkers(fake, controllableRun(fake, control), async () => {
      const handle = await start(fake, input(id, 'user-d'));
      await eventually(() => control.has(id));
      fake.rows.get(id)!.status = 'CANCELLING';
      await handle.signal(stopExecutionSignal, { reason: 'cancel', status: 'CANCELLED' });
      return handle.result();
    });
    expect(result.status).toBe('CANCELLED');
    expect(fake.calls).toEqual([`granted ${id}`, `run ${id}`, `stopped ${id}`, `ended ${id} CANCELLED: Execution cancelled`, `released ${id}`]);
    expect(fake.notices.map((n) => `${n.executionId} ${n.status}`)).toEqual([`${id} CANCELLED`]);
  }, 60_000);

  it('stops the process when a terminal status is set from outside, and leaves that status alone', async () => {
    const fake = new FakeExecutions();
    const control = new Map<string, (r: RunScriptResult) => void>();
    const id = newId();
    const result = await withWorkers(fake, controllableRun(fake, control), async () => {
      const handle = await start(fake, input(id, 'user-e'));
      await eventually(() => control.has(id));
      fake.rows.get(id)!.status = 'FINISHED';
      await handle.signal(stopExecutionSignal, { reason: 'terminal', status: 'FINISHED' });
      return handle.result();
    });
    expect(result.status).toBe('FINISHED');
    expect(fake.calls).toEqual([`granted ${id}`, `run ${id}`, `stopped ${id}`, `released ${id}`]);
    expect(fake.notices.map((n) => `${n.executionId} ${n.status}`)).toEqual([`${id} FINISHED`]);
  }, 60_000);

  it('gives the slot back, shows the status and tells the owner of a run that ended as an operator cancelled it', async () => {
    const fake = new FakeExecutions();
    const id = newId();
    const outcome = await withWorkers(
      fake,
      async (executionId) => {
        // The script ends as the cancel comes: the runner records the outcome and returns it.
        const ctx = Context.current();
        fake.calls.push(`run ${executionId}`);
        const beat = setInterval(() => ctx.heartbeat({ progress: 50 }), 200);
        try {
          await new Promise<void>((resolve) => ctx.cancellationSignal.addEventListener('abort', () => resolve()));
        } finally {
          clearInterval(beat);
        }
        fake.rows.get(executionId)!.status = 'FINISHED';
        return { outcome: 'FINISHED', status: 'FINISHED' };
      },
      async () => {
        const handle = await start(fake, input(id, 'user-o', { concurrencyLimit: 1 }));
        await eventually(() => fake.calls.includes(`run ${id}`));
        await handle.cancel();
        const failure = await handle.result().then(
          () => undefined,
          (err: unknown) => err,
        );
        return { failure, attributes: (await handle.describe()).typedSearchAttributes };
      },
    );
    // The cancellation stands (the workflow ends cancelled); the run keeps the status it ended with.
    expect(outcome.failure).toBeInstanceOf(WorkflowFailedError);
    expect((outcome.failure as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect(fake.calls.filter((c) => c === `released ${id}`)).toHaveLength(1);
    expect(fake.rows.get(id)!.slotHeld).toBe(false);
    expect(outcome.attributes.get(gefStatusKey)).toBe('FINISHED');
    expect(fake.notices.map((n) => `${n.executionId} ${n.status}`)).toEqual([`${id} FINISHED`]);
  }, 60_000);

  it('wakes the runs its slot frees even when an operator cancels it while it gives the slot back', async () => {
    const fake = new FakeExecutions();
    const [first, next] = [newId(), newId()];
    // The first run's release waits until the test lets it go.
    let letGo!: () => void;
    const gate = new Promise<void>((resolve) => (letGo = resolve));
    const activities = fake.activities();
    const release = activities.releaseExecutionSlot;
    activities.releaseExecutionSlot = async (i) => {
      if (i.executionId === first) {
        fake.calls.push(`releasing ${first}`);
        await gate;
      }
      return release(i);
    };
    fake.activities = () => activities;
    const outcome = await withWorkers(
      fake,
      async (executionId) => {
        fake.calls.push(`run ${executionId}`);
        fake.rows.get(executionId)!.status = 'FINISHED';
        return { outcome: 'FINISHED', status: 'FINISHED' };
      },
      async () => {
        fake.add(first, 'user-r');
        fake.add(next, 'user-r');
        // A short workflow task timeout: the local activity's task is heartbeated, and the
        // cancel delivered, within about a second and a half.
        const options = { taskQueue: taskQueues.execution, workflowTaskTimeout: '2s' } as const;
        const firstHandle = await env.client.workflow.start(runExecution, { ...options, workflowId: runExecutionWorkflowId(first), args: [input(first, 'user-r', { concurrencyLimit: 1 })] });
        await eventually(() => fake.calls.includes(`releasing ${first}`));
        const nextHandle = await env.client.workflow.start(runExecution, { ...options, workflowId: runExecutionWorkflowId(next), args: [input(next, 'user-r', { concurrencyLimit: 1 })] });
        await eventually(() => fake.calls.includes(`queued ${next}`));
        await firstHandle.cancel();
        // The release goes on once the workflow has taken the cancel (or has not ended by then).
        const ended = await Promise.race([firstHandle.result().then(() => 'ended', () => 'ended'), sleep(6000).then(() => 'open')]);
        letGo();
        const nextResult = await Promise.race([nextHandle.result(), sleep(15_000).then(() => undefined)]);
        return { ended, nextResult };
      },
    );
    // The cancel waited for the release, and the run the release freed a slot for ran.
    expect(outcome.ended).toBe('open');
    expect(outcome.nextResult?.status).toBe('FINISHED');
    expect(fake.calls).toEqual(expect.arrayContaining([`released ${first}`, `granted ${next}`, `run ${next}`]));
  }, 60_000);

  it('ends with the stored status when the runner could not learn how the run ended, and fails a run left unended', async () => {
    const fake = new FakeExecutions();
    const [endedFromOutside, unended] = [newId(), newId()];
    const results = await withWorkers(
      fake,
      async (executionId) => {
        // Ended from outside as the script ran (or not), the service away as the runner stopped it.
        if (executionId === endedFromOutside) fake.rows.get(executionId)!.status = 'FINISHED';
        return { outcome: 'STOPPED', status: 'UNKNOWN' };
      },
      async () => {
        const handles = [await start(fake, input(endedFromOutside, 'user-p')), await start(fake, input(unended, 'user-q'))];
        return Promise.all(
          handles.map(async (handle) => ({ result: await handle.result(), status: (await handle.describe()).typedSearchAttributes.get(gefStatusKey) })),
        );
      },
    );
    expect(results).toEqual([
      { result: { executionId: endedFromOutside, status: 'FINISHED' }, status: 'FINISHED' },
      { result: { executionId: unended, status: 'FAILED' }, status: 'FAILED' },
    ]);
    expect(fake.calls).toContain(`ended ${unended} FAILED: The run failed: its runner could not record how it ended`);
    expect(fake.notices.map((n) => `${n.executionId} ${n.status}`).sort()).toEqual([`${endedFromOutside} FINISHED`, `${unended} FAILED`].sort());
  }, 60_000);

  it('moves a run whose runner died (no heartbeats) to another attempt', async () => {
    const fake = new FakeExecutions();
    const id = newId();
    const attempts: number[] = [];
    const result = await withWorkers(
      fake,
      async (executionId, attempt) => {
        attempts.push(attempt);
        if (attempt === 1) {
          // A runner that died: silent until Temporal gives up on it.
          await new Promise<void>((resolve) => Context.current().cancellationSignal.addEventListener('abort', () => resolve()));
          throw new Error('abandoned');
        }
        fake.rows.get(executionId)!.status = 'FINISHED';
        return { outcome: 'FINISHED', status: 'FINISHED' };
      },
      async () => (await start(fake, input(id, 'user-f', { heartbeatTimeoutSeconds: 2 }))).result(),
    );
    expect(result.status).toBe('FINISHED');
    expect(attempts).toEqual([1, 2]);
  }, 90_000);

  it('ends FAILED with the reason when no runner gets the run done', async () => {
    const fake = new FakeExecutions();
    const id = newId();
    const result = await withWorkers(
      fake,
      async () => {
        throw new Error('archive download failed');
      },
      async () => (await start(fake, input(id, 'user-g', { maxAttempts: 2 }))).result(),
    );
    expect(result.status).toBe('FAILED');
    expect(fake.calls).toContain(`ended ${id} FAILED: The run failed on the runner: archive download failed`);
    expect(fake.notices.map((n) => `${n.executionId} ${n.status}`)).toEqual([`${id} FAILED`]);
  }, 60_000);

  it('ends FAILED when the run outlives its timeout on the runner', async () => {
    const fake = new FakeExecutions();
    const id = newId();
    const result = await withWorkers(
      fake,
      async () => {
        const ctx = Context.current();
        const beat = setInterval(() => ctx.heartbeat({ progress: 1 }), 200);
        await new Promise<void>((resolve) => ctx.cancellationSignal.addEventListener('abort', () => resolve()));
        clearInterval(beat);
        throw new Error('gone');
      },
      async () => (await start(fake, input(id, 'user-h', { timeoutSeconds: 1, prepareTimeoutSeconds: 1, maxAttempts: 1 }))).result(),
    );
    expect(result.status).toBe('FAILED');
    expect(fake.calls).toContain(`ended ${id} FAILED: The run failed: it did not end within 2 s on its runner`);
  }, 60_000);

  it('does nothing more for a run that ended before its turn (or was deleted)', async () => {
    const fake = new FakeExecutions();
    const id = newId();
    const result = await withWorkers(
      fake,
      async () => {
        throw new Error('never called');
      },
      async () => {
        fake.add(id, 'user-i');
        fake.rows.get(id)!.status = 'FINISHED';
        const handle = await start(fake, input(id, 'user-i'));
        return handle.result();
      },
    );
    expect(result.status).toBe('FINISHED');
  }, 60_000);

  it('ignores a wake-up that finds no slot and keeps waiting', async () => {
    const fake = new FakeExecutions();
    const control = new Map<string, (r: RunScriptResult) => void>();
    const [first, second] = [newId(), newId()];
    await withWorkers(fake, controllableRun(fake, control), async () => {
      const a = await start(fake, input(first, 'user-j', { concurrencyLimit: 1 }));
      await eventually(() => control.has(first));
      const b = await start(fake, input(second, 'user-j', { concurrencyLimit: 1 }));
      await eventually(() => fake.calls.includes(`queued ${second}`));
      await b.signal(slotFreedSignal);
      await sleep(300);
      expect(control.has(second)).toBe(false);
      control.get(first)!({ outcome: 'FINISHED', status: 'FINISHED' });
      await a.result();
      await eventually(() => control.has(second));
      control.get(second)!({ outcome: 'FINISHED', status: 'FINISHED' });
      await b.result();
    });
  }, 60_000);

  it('tells no one about a run that was deleted', async () => {
    const fake = new FakeExecutions();
    const id = newId();
    const result = await withWorkers(
      fake,
      async () => {
        throw new Error('never called');
      },
      // Deleted before its turn: the execution service knows it no more.
      async () =>
        (
          await env.client.workflow.start(runExecution, {
            taskQueue: taskQueues.execution,
            workflowId: runExecutionWorkflowId(id),
            args: [input(id, 'user-k')],
          })
        ).result(),
    );
    expect(result.status).toBe('GONE');
    expect(fake.notices).toEqual([]);
  }, 60_000);

  it('ends with the run\'s status when its e-mail cannot be sent', async () => {
    const fake = new FakeExecutions();
    fake.mailDown = true;
    const id = newId();
    const result = await withWorkers(
      fake,
      async (executionId) => {
        fake.rows.get(executionId)!.status = 'FINISHED';
        return { outcome: 'FINISHED', status: 'FINISHED' };
      },
      async () => (await start(fake, input(id, 'user-l'))).result(),
    );
    expect(result).toEqual<RunExecutionResult>({ executionId: id, status: 'FINISHED' });
    expect(fake.calls).toEqual([`granted ${id}`, `released ${id}`]);
    expect(fake.notices).toEqual([]);
  }, 60_000);

  it('ends a run handed to the runners whose user is being deleted as GONE: not FAILED, telling no one', async () => {
    const fake = new FakeExecutions();
    const control = new Map<string, (r: RunScriptResult) => void>();
    const id = newId();
    const result = await withWorkers(fake, controllableRun(fake, control), async () => {
      const handle = await start(fake, input(id, 'user-n'));
      await eventually(() => control.has(id));
      await handle.signal(stopExecutionSignal, { reason: 'deleted' });
      return handle.result();
    });
    expect(result).toEqual({ executionId: id, status: 'GONE' });
    expect(fake.calls).toEqual([`granted ${id}`, `run ${id}`, `stopped ${id}`, `released ${id}`]);
    expect(fake.notices).toEqual([]);
  }, 60_000);

  it('ends a waiting run whose user is being deleted as GONE, telling no one', async () => {
    const fake = new FakeExecutions();
    const control = new Map<string, (r: RunScriptResult) => void>();
    const [first, waiting] = [newId(), newId()];
    await withWorkers(fake, controllableRun(fake, control), async () => {
      const a = await start(fake, input(first, 'user-m', { concurrencyLimit: 1 }));
      await eventually(() => control.has(first));
      const b = await start(fake, input(waiting, 'user-m', { concurrencyLimit: 1 }));
      await eventually(() => fake.calls.includes(`queued ${waiting}`));
      await b.signal(stopExecutionSignal, { reason: 'deleted' });
      expect(await b.result()).toEqual({ executionId: waiting, status: 'GONE' });
      control.get(first)!({ outcome: 'FINISHED', status: 'FINISHED' });
      await a.result();
    });
    expect(fake.notices.map((n) => n.executionId)).toEqual([first]);
  }, 60_000);
});
