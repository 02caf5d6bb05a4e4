import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { taskQueues } from '@gef/workflows/task-queues';
import {
  gefScriptIdKey,
  gefStatusKey,
  gefUserIdKey,
  runExecution,
  runExecutionWorkflowId,
  slotFreedSignal,
  stopExecutionSignal,
  type RunExecutionInput,
  type StopRequest,
} from '@gef/workflows';
import { sharedCounter, within, type MetricsRegistry } from '@gef/common';
import type { RunLauncher } from '../domain/run-launcher';

const callTimeoutMs = 10_000;

/** The states of a workflow that has closed. */
const closedStatuses = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED', 'TIMED_OUT', 'CONTINUED_AS_NEW']);

const bounded = <T>(call: Promise<T>, what: string): Promise<T> => within(call, callTimeoutMs, `Temporal did not answer ${what} in time`);

/**
 * Runs as runExecution workflows on the execution service's task queue. Starts go through
 * the local worker's connection when it runs (`eager`), asking Temporal to hand the first
 * workflow task straight back to that worker; else through the service's client. Starts
 * are counted by how their first task came (`gef_run_workflow_starts_total{first_task}`:
 * `eager` in the start's answer, `queued` through the task queue).
 */
export class TemporalRunLauncher implements RunLauncher {
  private readonly starts: ReturnType<typeof sharedCounter<'first_task'>> | undefined;

  constructor(
    private readonly client: Client,
    private readonly eager: () => Client | undefined = () => undefined,
    registry?: MetricsRegistry,
  ) {
    this.starts = registry && sharedCounter(registry, 'gef_run_workflow_starts_total', 'Run workflows started, by how their first task came (eager, queued)', ['first_task'] as const);
  }

  async start(run: RunExecutionInput): Promise<void> {
    const eager = this.eager();
    try {
      const handle = await bounded(
        (eager ?? this.client).workflow.start(runExecution, {
          ...(eager ? { requestEagerStart: true } : {}),
          taskQueue: taskQueues.execution,
          workflowId: runExecutionWorkflowId(run.executionId),
          args: [run],
          // An execution runs once: its workflow id is never reused.
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          typedSearchAttributes: [
            { key: gefUserIdKey, value: run.userId },
            { key: gefScriptIdKey, value: run.scriptId },
            // A run that took its slot when accepted is READY once this start is recorded.
            { key: gefStatusKey, value: run.slotGranted ? 'READY' : 'PENDING' },
          ],
        }),
        'the start of a run',
      );
      this.starts?.inc({ first_task: handle.eagerlyStarted ? 'eager' : 'queued' });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return;
      throw err;
    }
  }

  async stop(executionId: string, request: StopRequest): Promise<void> {
    try {
      await bounded(this.client.workflow.getHandle(runExecutionWorkflowId(executionId)).signal(stopExecutionSignal, request), 'a stop signal');
    } catch (err) {
      // A run whose workflow has ended needs no telling. (The outbox tells a stop only once
      // its run's start is delivered, so a workflow not started yet is never taken for one.)
      if (err instanceof WorkflowNotFoundError) return;
      throw err;
    }
  }

  /**
   * Whether a run's workflow has ended (completed, failed, cancelled, terminated, timed out)
   * or is not known to Temporal; false while it runs, or in a state this SDK does not name.
   * Throws when Temporal does not answer.
   */
  async workflowEnded(executionId: string): Promise<boolean> {
    try {
      const info = await bounded(this.client.workflow.getHandle(runExecutionWorkflowId(executionId)).describe(), "a run's workflow state");
      return closedStatuses.has(info.status.name);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return true;
      throw err;
    }
  }

  async wake(executionId: string): Promise<void> {
    try {
      await bounded(this.client.workflow.getHandle(runExecutionWorkflowId(executionId)).signal(slotFreedSignal), 'a wake-up');
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return;
      throw err;
    }
  }
}
