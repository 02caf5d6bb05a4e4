import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { taskQueues } from '@gef/workflows/task-queues';
import { buildScript, buildScriptWorkflowId } from '@gef/workflows';
import type { BuildLauncher, BuildRef } from '../domain/build-launcher';

const startTimeoutMs = 10_000;

/** Starts the buildScript workflow on the script service's task queue, one per version. */
export class TemporalBuildLauncher implements BuildLauncher {
  constructor(private readonly client: Client) {}

  async launch(ref: BuildRef): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const start = this.client.workflow.start(buildScript, {
      taskQueue: taskQueues.script,
      workflowId: buildScriptWorkflowId(ref),
      args: [{ scriptId: ref.scriptId, version: ref.version }],
    });
    try {
      await Promise.race([
        start,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('Temporal did not answer in time')), startTimeoutMs);
        }),
      ]);
    } catch (err) {
      // Already running (or run): that build does the job.
      if (err instanceof WorkflowExecutionAlreadyStartedError) return;
      throw err;
    } finally {
      clearTimeout(timer);
      start.catch(() => undefined);
    }
  }
}
