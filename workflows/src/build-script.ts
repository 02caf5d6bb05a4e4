import { ActivityFailure, ApplicationFailure, CancellationScope, isCancellation, patched, proxyActivities, proxyLocalActivities, TimeoutFailure } from '@temporalio/workflow';
import type { RunnerActivities, ScriptActivities } from './activities';
import { taskQueues } from './task-queues';

export interface BuildScriptInput {
  scriptId: string;
  version: number;
}

export interface BuildScriptResult {
  scriptId: string;
  version: number;
  /** SKIPPED: the script or version was gone, or its build had already ended. */
  status: 'SUCCESS' | 'FAIL' | 'SKIPPED';
  environmentHash?: string;
  reason?: string;
}

// State changes on the script service, whose worker runs this workflow: local activities,
// run beside the workflow task without a round trip through a task queue (two fewer hops
// per build). Retried until they succeed (each is idempotent).
const scripts = proxyLocalActivities<ScriptActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});

// The environment, on whichever runner takes it. A runner that dies stops heartbeating and
// the attempt is retried (on it when it is back, or on another).
const runner = proxyActivities<RunnerActivities>({
  taskQueue: taskQueues.runner,
  startToCloseTimeout: '30m',
  heartbeatTimeout: '15s',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 5 },
});

/** Why an activity failed, in words for the build log. */
function reasonOf(err: unknown): string {
  let cause: unknown = err;
  while (cause instanceof ActivityFailure && cause.cause) cause = cause.cause;
  if (cause instanceof TimeoutFailure) {
    return cause.timeoutType === 'HEARTBEAT' ? 'the runner preparing the environment stopped answering' : 'preparing the environment took too long';
  }
  if (cause instanceof ApplicationFailure) return cause.message;
  return cause instanceof Error ? cause.message : String(cause);
}

/**
 * Builds one version of a script: PENDING → BUILDING → SUCCESS | FAIL. The script service
 * records state and log lines; a runner prepares the runtime environment (reused when one
 * with the same hash exists) and streams its output to the build log itself. The
 * requirements never pass through here (they may hold credentials): the runner reads them
 * from the script service with the build token. Any failure ends FAIL with its reason as
 * the last log line.
 */
export async function buildScript(input: BuildScriptInput): Promise<BuildScriptResult> {
  const ref = { scriptId: input.scriptId, version: input.version };
  // Cancelled by an operator (in Temporal): the build still ends, FAIL with the reason, and
  // then the cancellation ends the workflow.
  const finishCancelled = async () => {
    await CancellationScope.nonCancellable(() => scripts.finishScriptBuild({ ...ref, status: 'FAIL', reason: 'the build was cancelled' }));
    return CancellationScope.current().cancelRequested;
  };
  let plan: Awaited<ReturnType<ScriptActivities['startScriptBuild']>>;
  try {
    plan = await scripts.startScriptBuild(ref);
  } catch (err) {
    // Cancelled while the build was being started (the database away, say): it ends FAIL too,
    // or the script service's housekeeping would start it again. (Before this marker, the
    // version stayed PENDING or BUILDING.)
    if (isCancellation(err) && patched('cancelled-build-start-ends-fail')) return finishCancelled();
    throw err;
  }
  if (!plan.proceed) return { ...ref, status: 'SKIPPED', reason: plan.reason };

  let result: BuildScriptResult;
  try {
    const env = await runner.prepareEnvironment({
      ...ref,
      runtime: plan.runtime,
      buildToken: plan.buildToken,
      ...(plan.archive ? { archive: plan.archive } : {}),
    });
    result = { ...ref, status: 'SUCCESS', environmentHash: env.environmentHash };
  } catch (err) {
    result = { ...ref, status: 'FAIL', reason: reasonOf(err) };
  }
  // Cancelled while the environment was prepared. (Before this marker, the version stayed
  // BUILDING and the script could not run until another version was uploaded.)
  if (CancellationScope.current().consideredCancelled && patched('cancelled-build-ends-fail')) return finishCancelled();
  await scripts.finishScriptBuild({
    ...ref,
    status: result.status === 'SUCCESS' ? 'SUCCESS' : 'FAIL',
    ...(result.environmentHash ? { environmentHash: result.environmentHash } : {}),
    ...(result.reason ? { reason: result.reason } : {}),
  });
  return result;
}

/** The workflow id of a version's build: one build per version. */
export const buildScriptWorkflowId = (ref: { scriptId: string; version: number }) => `build-script-${ref.scriptId}-v${ref.version}`;
