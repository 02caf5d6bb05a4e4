import type { PasswordLinkRequest } from '@gef/workflows/activities';

/** What a workflow start asked for (besides the workflow itself). */
export interface StartOptions<A> {
  workflowId: string;
  args: A[];
  taskQueue?: string;
  workflowIdReusePolicy?: string;
}

/**
 * A Temporal client that records the workflows started, and fails while `down`. Workflow
 * ids in `existing` are refused as Temporal refuses one already running (or, under the
 * policy `ALLOW_DUPLICATE_FAILED_ONLY`, one that completed).
 */
export class FakeTemporal<A = PasswordLinkRequest> {
  /** The workflow id and arguments of each start. */
  readonly started: Pick<StartOptions<A>, 'workflowId' | 'args'>[] = [];
  /** Every start's options as given. */
  readonly options: StartOptions<A>[] = [];
  readonly existing = new Set<string>();
  down = false;
  readonly workflow = {
    start: async (_workflow: unknown, options: StartOptions<A>) => {
      if (this.down) throw new Error('Temporal unreachable');
      if (this.existing.has(options.workflowId)) {
        throw Object.assign(new Error('Workflow execution already started'), { name: 'WorkflowExecutionAlreadyStartedError' });
      }
      this.started.push({ workflowId: options.workflowId, args: options.args });
      this.options.push(options);
      return {};
    },
  };
}
