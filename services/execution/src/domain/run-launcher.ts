import type { RunExecutionInput, StopRequest } from '@gef/workflows';

/** Starts and steers the runExecution workflows. */
export interface RunLauncher {
  /** Starts a run's workflow (an already started one is fine). */
  start(run: RunExecutionInput): Promise<void>;
  /**
   * Tells a run's workflow to stop, after the database says why. Best effort: the database
   * is the truth (a runner learns it from its next log batch, a waiting run at its claim).
   */
  stop(executionId: string, request: StopRequest): Promise<void>;
}
