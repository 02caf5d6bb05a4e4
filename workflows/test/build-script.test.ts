import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { CancelledFailure as TemporalCancelledFailure } from '@temporalio/common';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { PrepareEnvironmentInput, RunnerActivities, ScriptActivities, ScriptBuildOutcome, ScriptBuildPlan, ScriptBuildRef } from '../src/activities';
import { buildScript, buildScriptWorkflowId, type BuildScriptResult } from '../src/build-script';
import { taskQueues } from '../src/task-queues';
import { startWorkflowEnvironment } from './support/workflow-environment';



/** What the fake script service saw. */
interface Recorded {
  calls: string[];
  outcomes: ScriptBuildOutcome[];
  prepareInputs: PrepareEnvironmentInput[];
}

interface Fakes {
  plan?: Awaited<ReturnType<ScriptActivities['startScriptBuild']>>;
  prepare?: (input: PrepareEnvironmentInput, attempt: number) => Promise<{ environmentHash: string; reused: boolean; hostname: string }>;
  finishFailures?: number;
  /** Before the state change that starts the build answers (it answers `plan`). */
  beforeStart?: () => Promise<void>;
  /** A workflow task timeout of its own (a local activity's task is heartbeated at 80 % of it). */
  workflowTaskTimeout?: string;
  /** Called once the workflow started, with its handle and what the fakes saw so far. */
  drive?: (handle: WorkflowHandle, recorded: Recorded) => Promise<void>;
}

describe('buildScript workflow', () => {
  let env: TestWorkflowEnvironment;
  let bundle: WorkflowBundleWithSourceMap;
  let n = 0;

  beforeAll(async () => {
    ({ env, bundle } = await startWorkflowEnvironment());
  }, 120_000);

  afterAll(async () => {
    await env?.teardown();
  });

  /** Runs one build with fake activities on the script and runner task queues. */
  async function run(fakes: Fakes): Promise<{ result: BuildScriptResult; recorded: Recorded; workflowId: string }> {
    n++;
    const recorded: Recorded = { calls: [], outcomes: [], prepareInputs: [] };
    let finishFailures = fakes.finishFailures ?? 0;
    const scriptActivities: ScriptActivities = {
      async deleteScriptsOfUser() {
        return { scripts: 0 };
      },
      async startScriptBuild(ref: ScriptBuildRef) {
        recorded.calls.push(`start v${ref.version}`);
        await fakes.beforeStart?.();
        return fakes.plan ?? { proceed: true, runtime: 'python3', buildToken: 'the-build-token' };
      },
      async finishScriptBuild(outcome) {
        if (finishFailures-- > 0) throw new Error('database unavailable');
        recorded.calls.push(`finish ${outcome.status}`);
        recorded.outcomes.push(outcome);
      },
    };
    const runnerActivities: RunnerActivities = {
      async describeRunner() {
        return { hostname: 'test', runtimes: [], sandbox: { setpriv: false, prlimit: false } };
      },
      async prepareEnvironment(input) {
        const attempt = Context.current().info.attempt;
        recorded.calls.push(`prepare attempt ${attempt}`);
        recorded.prepareInputs.push(input);
        return (fakes.prepare ?? (async () => ({ environmentHash: 'a'.repeat(64), reused: false, hostname: 'test' })))(input, attempt);
      },
    };
    // Workflows run on the script queue (as on the script service); the runner has its own.
    const scriptWorker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: taskQueues.script,
      workflowBundle: bundle,
      activities: scriptActivities,
    });
    const runnerWorker = await Worker.create({ connection: env.nativeConnection, taskQueue: taskQueues.runner, activities: runnerActivities });
    const ref = { scriptId: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`, version: 3 };
    const workflowId = buildScriptWorkflowId(ref);
    const result = await runnerWorker.runUntil(
      scriptWorker.runUntil(
        (async () => {
          const handle = await env.client.workflow.start(buildScript, {
            taskQueue: taskQueues.script,
            workflowId,
            args: [ref],
            ...(fakes.workflowTaskTimeout ? { workflowTaskTimeout: fakes.workflowTaskTimeout } : {}),
          });
          await fakes.drive?.(handle, recorded);
          // A workflow that fails says what the fakes saw.
          return handle.result().catch((err: unknown) => {
            throw Object.assign(err as Error, { recorded });
          });
        })(),
      ),
    );
    return { result, recorded, workflowId };
  }

  it('goes PENDING → BUILDING → SUCCESS with the environment hash', async () => {
    const { result, recorded } = await run({});
    expect(result).toMatchObject({ status: 'SUCCESS', version: 3, environmentHash: 'a'.repeat(64) });
    expect(recorded.calls).toEqual(['start v3', 'prepare attempt 1', 'finish SUCCESS']);
    expect(recorded.prepareInputs[0]).toMatchObject({ version: 3, runtime: 'python3', buildToken: 'the-build-token' });
    expect(recorded.outcomes[0]).toMatchObject({ status: 'SUCCESS', environmentHash: 'a'.repeat(64) });
  }, 60_000);

  it('gives the runner no requirements, even from a plan recorded with them', async () => {
    // A plan as startScriptBuild made it before runners read the requirements with the build
    // token (a build in flight across an upgrade replays it): they may hold credentials.
    const recordedPlan = { proceed: true as const, runtime: 'python3', requirements: '--extra-index-url https://u:REQ-TOKEN@x/simple\n', buildToken: 'the-build-token' };
    const plan: ScriptBuildPlan = recordedPlan;
    const { result, recorded, workflowId } = await run({ plan });
    expect(result.status).toBe('SUCCESS');
    expect(recorded.prepareInputs).toHaveLength(1);
    expect(recorded.prepareInputs[0]).not.toHaveProperty('requirements');
    const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
    const scheduled = (history.events ?? []).flatMap((e) => e.activityTaskScheduledEventAttributes?.input?.payloads ?? []);
    expect(scheduled).toHaveLength(1);
    const inputs = scheduled.map((p) => Buffer.from(p.data ?? new Uint8Array()).toString('utf8'));
    expect(inputs[0]).toContain('the-build-token');
    expect(inputs[0]).not.toContain('REQ-TOKEN');
  }, 60_000);

  it('ends FAIL with the reason, without retrying, when a requirement cannot be installed', async () => {
    const reason = 'pip install failed: No matching distribution found for no-such-package';
    const { result, recorded } = await run({
      prepare: async () => {
        throw ApplicationFailure.nonRetryable(reason, 'InvalidRequirements');
      },
    });
    expect(result).toMatchObject({ status: 'FAIL', reason });
    expect(recorded.calls).toEqual(['start v3', 'prepare attempt 1', 'finish FAIL']);
    expect(recorded.outcomes[0]).toEqual({ scriptId: expect.any(String), version: 3, status: 'FAIL', reason });
  }, 60_000);

  it('retries a transient failure on the runner', async () => {
    const { result, recorded } = await run({
      prepare: async (_input, attempt) => {
        if (attempt === 1) throw new Error('PyPI unreachable');
        return { environmentHash: 'b'.repeat(64), reused: true, hostname: 'test' };
      },
    });
    expect(result.status).toBe('SUCCESS');
    expect(recorded.calls).toEqual(['start v3', 'prepare attempt 1', 'prepare attempt 2', 'finish SUCCESS']);
  }, 60_000);

  it('retries the state change until it is recorded', async () => {
    const { result, recorded } = await run({ finishFailures: 2 });
    expect(result.status).toBe('SUCCESS');
    expect(recorded.outcomes).toHaveLength(1);
  }, 60_000);

  it('does nothing more when the version is gone or already built', async () => {
    const { result, recorded } = await run({ plan: { proceed: false, reason: 'the script was deleted' } });
    expect(result).toMatchObject({ status: 'SKIPPED', reason: 'the script was deleted' });
    expect(recorded.calls).toEqual(['start v3']);
  }, 60_000);

  it('finishes on a retry when the runner dies mid-build (heartbeat timeout)', async () => {
    const { result, recorded } = await run({
      prepare: async (_input, attempt) => {
        if (attempt === 1) {
          // A runner that died: no heartbeats, no answer, until Temporal gives up on it.
          await new Promise<void>((resolve) => Context.current().cancellationSignal.addEventListener('abort', () => resolve()));
          throw new Error('abandoned');
        }
        return { environmentHash: 'c'.repeat(64), reused: false, hostname: 'another-runner' };
      },
    });
    expect(result).toMatchObject({ status: 'SUCCESS', environmentHash: 'c'.repeat(64) });
    expect(recorded.calls).toEqual(['start v3', 'prepare attempt 1', 'prepare attempt 2', 'finish SUCCESS']);
  }, 90_000);

  it('ends FAIL, recorded, when an operator cancels it while the environment is prepared; the cancellation then ends it', async () => {
    const failure = await run({
      prepare: async () => {
        // A runner that stops when told to.
        await new Promise<void>((resolve) => Context.current().cancellationSignal.addEventListener('abort', () => resolve()));
        throw new CancelledFailure('cancelled');
      },
      drive: async (handle, recorded) => {
        while (!recorded.calls.includes('prepare attempt 1')) await new Promise((r) => setTimeout(r, 20));
        await handle.cancel();
      },
    }).then(
      () => undefined,
      (err: unknown) => err as WorkflowFailedError & { recorded: Recorded },
    );
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect(failure!.cause).toBeInstanceOf(TemporalCancelledFailure);
    expect(failure!.recorded.calls).toEqual(['start v3', 'prepare attempt 1', 'finish FAIL']);
    expect(failure!.recorded.outcomes[0]).toMatchObject({ status: 'FAIL', reason: 'the build was cancelled' });
  }, 60_000);

  it('ends FAIL, recorded, when an operator cancels it while the build is being started (the database away, say)', async () => {
    let letGo!: () => void;
    const gate = new Promise<void>((resolve) => (letGo = resolve));
    const failure = await run({
      workflowTaskTimeout: '2s',
      beforeStart: () => gate,
      drive: async (handle, recorded) => {
        while (!recorded.calls.includes('start v3')) await new Promise((r) => setTimeout(r, 20));
        await handle.cancel();
        // The local activity's task is heartbeated within 1.6 s: the cancel reaches the workflow.
        setTimeout(letGo, 4000);
      },
    }).then(
      () => undefined,
      (err: unknown) => err as WorkflowFailedError & { recorded: Recorded },
    );
    letGo();
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect(failure!.cause).toBeInstanceOf(TemporalCancelledFailure);
    expect(failure!.recorded.calls).toEqual(['start v3', 'finish FAIL']);
    expect(failure!.recorded.outcomes[0]).toMatchObject({ status: 'FAIL', reason: 'the build was cancelled' });
  }, 60_000);

  it('names each version build after the script and version', () => {
    expect(buildScriptWorkflowId({ scriptId: 'abc', version: 2 })).toBe('build-script-abc-v2');
  });
});
