import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  defineSignal,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  TimeoutFailure,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { ClaimSlotResult, ExecutionFinishedNotice, ExecutionRunActivities, RunnerRunActivities, UserActivities } from './activities';
import { taskQueues } from './task-queues';

/** Search attributes (Keyword) the dev server registers at start, for operators' filters. */
export const gefUserIdKey = defineSearchAttributeKey('GefUserId', SearchAttributeType.KEYWORD);
export const gefScriptIdKey = defineSearchAttributeKey('GefScriptId', SearchAttributeType.KEYWORD);
export const gefStatusKey = defineSearchAttributeKey('GefStatus', SearchAttributeType.KEYWORD);

export interface RunExecutionInput {
  executionId: string;
  userId: string;
  scriptId: string;
  /** The script's name, for the owner's e-mail (absent in runs started before it existed). */
  scriptName?: string;
  /** The user's concurrency limit; null when unlimited (ADMIN and SUPERADMIN). */
  concurrencyLimit: number | null;
  /** The script's wall-clock timeout (the runner enforces it). */
  timeoutSeconds: number;
  /** Time a runner may take to prepare (environment, archive) on top of the timeout. */
  prepareTimeoutSeconds: number;
  /** A runner silent this long is taken for dead and the run moves to another. */
  heartbeatTimeoutSeconds: number;
  /** Runner attempts before the run ends FAILED. */
  maxAttempts: number;
  /**
   * The run's slot was taken when it was accepted (a free slot and nobody of the user
   * waiting, or no limit): it goes to a runner without asking again. Absent in runs accepted
   * before this existed, and in runs that must wait their turn.
   */
  slotGranted?: boolean;
  /**
   * False when the owner had not opted in to e-mails when the run was accepted: the run
   * ends without asking the user service. Absent: ask (it sends only to those who opted in).
   */
  notifyOwner?: boolean;
}

export interface RunExecutionResult {
  executionId: string;
  /** The execution's final status as this workflow knows it. */
  status: string;
}

/**
 * Why a run must stop, sent by the execution service after it changed the database:
 * `cancel` (CancelExecution: CANCELLED already when it had not started, else CANCELLING),
 * `terminal` (a terminal status set from outside; `status` names it) or `deleted`.
 */
export interface StopRequest {
  reason: 'cancel' | 'terminal' | 'deleted';
  status?: string;
}

export const stopExecutionSignal = defineSignal<[StopRequest]>('stopExecution');
/** A slot of the user may be free: try to claim it again. */
export const slotFreedSignal = defineSignal('slotFreed');

/** The workflow id of an execution's run. */
export const runExecutionWorkflowId = (executionId: string) => `execution-${executionId}`;

const terminalStatuses: readonly string[] = ['FINISHED', 'FAILED', 'CANCELLED'];

/**
 * The owner's e-mail about a run that ended (the user service sends it only to users who
 * opted in, once per execution). Called after the terminal status is stored and the slot
 * released; a mail that cannot be sent is retried for a day, then given up on (logged),
 * never failing the run.
 */
async function notifyOwner(input: RunExecutionInput, status: string): Promise<void> {
  if (!terminalStatuses.includes(status) || input.notifyOwner === false) return;
  const user = proxyActivities<UserActivities>({
    taskQueue: taskQueues.user,
    // As long as a password link: a mail server away for hours still gets the mail later.
    scheduleToCloseTimeout: '24h',
    startToCloseTimeout: '1m',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '10m' },
  });
  const notice: ExecutionFinishedNotice = {
    userId: input.userId,
    executionId: input.executionId,
    scriptId: input.scriptId,
    ...(input.scriptName ? { scriptName: input.scriptName } : {}),
    status: status as ExecutionFinishedNotice['status'],
  };
  try {
    await user.notifyExecutionFinished(notice);
  } catch (err) {
    if (isCancellation(err)) throw err;
    // Given up (after a day of attempts, or refused for good): the run's outcome stands without its e-mail.
    log.warn('the run-end e-mail was given up', { executionId: input.executionId, userId: input.userId });
  }
}

/** Why the runner activity failed for good, in words for the execution's log. */
function failureReason(err: unknown, input: RunExecutionInput): string {
  let cause: unknown = err;
  while (cause instanceof ActivityFailure && cause.cause) cause = cause.cause;
  if (cause instanceof TimeoutFailure) {
    if (cause.timeoutType === 'HEARTBEAT') {
      return `The run failed: its runner stopped answering (${input.maxAttempts} attempt${input.maxAttempts === 1 ? '' : 's'})`;
    }
    return `The run failed: it did not end within ${input.timeoutSeconds + input.prepareTimeoutSeconds} s on its runner`;
  }
  const message = cause instanceof ApplicationFailure || cause instanceof Error ? cause.message : String(cause);
  return `The run failed on the runner: ${message}`;
}

/**
 * One run of a script: wait for a slot under the user's concurrency limit (oldest first,
 * woken by a signal when a slot frees; no polling), READY, run on a runner with heartbeats
 * (a runner that dies is replaced: the activity is retried and `attempt` grows), terminal
 * status. The runner records RUNNING, log lines, progress, results and the outcome over
 * RPC; this workflow sees only ids and statuses. A status set from outside is final: the
 * run stops and nothing overwrites it. Cancellation follows the contract's state machine.
 */
export async function runExecution(input: RunExecutionInput): Promise<RunExecutionResult> {
  const id = input.executionId;
  const state = proxyLocalActivities<ExecutionRunActivities>({
    startToCloseTimeout: '30s',
    retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '10s' },
  });
  const runner = proxyActivities<RunnerRunActivities>({
    taskQueue: taskQueues.runner,
    startToCloseTimeout: (input.timeoutSeconds + input.prepareTimeoutSeconds) * 1000,
    heartbeatTimeout: input.heartbeatTimeoutSeconds * 1000,
    // A cancelled run ends only once its runner has stopped the process.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: input.maxAttempts },
  });

  let wakeups = 0;
  let stop: StopRequest | undefined;
  let runScope: CancellationScope | undefined;
  setHandler(slotFreedSignal, () => {
    wakeups++;
  });
  setHandler(stopExecutionSignal, (request) => {
    stop ??= request;
    runScope?.cancel();
  });

  /** Waits for the run's turn; `ended` when it ended meanwhile (cancelled, ended from outside). */
  async function takeSlot(): Promise<ClaimSlotResult> {
    if (input.slotGranted && !stop) return { outcome: 'granted' };
    for (;;) {
      if (stop) return { outcome: 'ended', status: stop.reason === 'deleted' ? 'GONE' : (stop.status ?? 'CANCELLED') };
      const seen = wakeups;
      const claim = await state.claimExecutionSlot({ executionId: id, userId: input.userId, limit: input.concurrencyLimit });
      if (claim.outcome !== 'waiting') return claim;
      await condition(() => wakeups > seen || stop !== undefined);
    }
  }

  /** Runs the script on a runner; the execution's final status. */
  async function runOnRunner(): Promise<string> {
    runScope = new CancellationScope();
    try {
      const result = await runScope.run(() => runner.runScript({ executionId: id }));
      // A cancel that came while no runner held the run: the runner did not start it.
      if (result.status === 'CANCELLING') return (await state.endExecution({ executionId: id, status: 'CANCELLED', reason: 'Execution cancelled' })).status;
      // The runner could not tell how the run ended (the service away as it stopped a run ended
      // from outside): the status the service has is the run's, and the runner is let go; a
      // run that did not end fails. (Before this marker, such a run ended with the runner's
      // word for its status, e.g. UNKNOWN, mailed no one and kept its runner.)
      if (!terminalStatuses.includes(result.status) && result.status !== 'GONE' && patched('unknown-status-ends-stored')) {
        return (await state.endExecution({ executionId: id, status: 'FAILED', reason: 'The run failed: its runner could not record how it ended' })).status;
      }
      return result.status;
    } catch (err) {
      // Asked to stop: however the runner ended the attempt, the stop decides the outcome.
      if (stop) {
        if (stop.reason === 'cancel') return (await state.endExecution({ executionId: id, status: 'CANCELLED', reason: 'Execution cancelled' })).status;
        // Its user is being deleted, and the run with them: nothing to record, no one to tell.
        // (Before this marker, such a run still READY could be ended FAILED, and mailed about,
        // just before its deletion.)
        if (stop.reason === 'deleted' && patched('deleted-stop-ends-gone')) return 'GONE';
        // Ended from outside: the run keeps its status; the runner, gone without recording its
        // outcome, is let go, so followers stop waiting for its last lines.
        if (patched('outside-stop-releases-runner')) {
          return (await state.endExecution({ executionId: id, status: 'FAILED', reason: 'The runner stopped after the run was ended from outside' })).status;
        }
        return stop.status ?? 'GONE';
      }
      if (isCancellation(err)) throw err;
      return (await state.endExecution({ executionId: id, status: 'FAILED', reason: failureReason(err, input) })).status;
    } finally {
      runScope = undefined;
    }
  }

  let status = 'PENDING';
  try {
    const claim = await takeSlot();
    if (claim.outcome === 'ended') {
      status = claim.status;
    } else if (stop) {
      // Stopped between the grant and the runner: the service has recorded the outcome.
      status = stop.reason === 'cancel' ? 'CANCELLED' : (stop.status ?? 'GONE');
    } else {
      // A run granted when accepted was started with GefStatus READY already.
      if (!input.slotGranted) upsertSearchAttributes([{ key: gefStatusKey, value: 'READY' }]);
      status = await runOnRunner();
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // The workflow itself was cancelled (by an operator in Temporal): the run ends CANCELLED.
    await CancellationScope.nonCancellable(async () => {
      status = (await state.endExecution({ executionId: id, status: 'CANCELLED', reason: 'Execution cancelled by an operator' })).status;
      await releaseSlot();
      upsertSearchAttributes([{ key: gefStatusKey, value: status }]);
      await notifyOwner(input, status);
    });
    throw err;
  }
  // The slot goes back and the runs it frees are woken whatever cancellation comes meanwhile:
  // an operator's cancel during the release would drop the wake-ups, and the user's waiting
  // runs would wait for another run to end. Cancelled by an operator as the run ended (the
  // runner had finished the script and recorded its outcome): the run ended all the same, so
  // its status is shown and its owner told, then the cancellation ends the workflow. (Before
  // the first marker, such a slot stayed held for good; before the second, a cancel during
  // the release lost its wake-ups.)
  const cancelledAsEnded = CancellationScope.current().consideredCancelled;
  if (cancelledAsEnded ? patched('cancel-as-run-ended-releases-slot') : patched('run-end-releases-slot-whole')) {
    await CancellationScope.nonCancellable(async () => {
      await releaseSlot();
      upsertSearchAttributes([{ key: gefStatusKey, value: status }]);
      if (cancelledAsEnded) await notifyOwner(input, status);
    });
    if (cancelledAsEnded) return CancellationScope.current().cancelRequested;
    // A cancel from here on drops only the e-mail.
    await notifyOwner(input, status);
    return { executionId: id, status };
  }
  await releaseSlot();
  upsertSearchAttributes([{ key: gefStatusKey, value: status }]);
  await notifyOwner(input, status);
  return { executionId: id, status };

  /** Gives the slot back and wakes the runs of the user that now fit. */
  async function releaseSlot(): Promise<void> {
    if (input.concurrencyLimit === null) return;
    const { wake } = await state.releaseExecutionSlot({ executionId: id, userId: input.userId, limit: input.concurrencyLimit });
    await Promise.all(
      wake.map((next) =>
        getExternalWorkflowHandle(runExecutionWorkflowId(next))
          .signal(slotFreedSignal)
          // Already ended, or not started yet (it claims when it starts).
          .catch(() => undefined),
      ),
    );
  }
}
