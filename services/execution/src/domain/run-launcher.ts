import type { RunExecutionInput, StopRequest } from '@gef/workflows';

/** Starts and steers the runExecution workflows. */
export interface RunLauncher {
  /** Starts a run's workflow (an already started one is fine). */
  start(run: RunExecutionInput): Promise<void>;
  /**
   * Tells a run's workflow to stop, after the database says why (a workflow that does not
   * exist, or has ended, needs no telling). Cancels and outside ends go through the outbox
   * (`DispatchRepository.addStop`), which retries this until Temporal takes it.
   */
  stop(executionId: string, request: StopRequest): Promise<void>;
  /**
   * Tells a run waiting for its user's slot that one may be free: it claims again. A run
   * whose workflow has not started claims when it starts, and an ended one needs nothing.
   */
  wake(executionId: string): Promise<void>;
}

/** What Temporal knows of a run's workflow. */
export interface RunWorkflowStates {
  /** Whether the run's workflow has ended or is unknown (false while it runs); throws when Temporal does not answer. */
  workflowEnded(executionId: string): Promise<boolean>;
}
