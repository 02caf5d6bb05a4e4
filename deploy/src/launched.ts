import type { ManagedProcess } from './process';

/**
 * A part that was spawned: its process group and a promise that settles when it is
 * ready (or rejects when it exits or times out first).
 */
export interface Launched {
  proc: ManagedProcess;
  ready: Promise<void>;
  /**
   * Whether an exit during start is worth one more start, judged from what the process
   * wrote to its log in this start (a port taken in a race it cannot avoid). Omitted:
   * an exit during start is a failure.
   */
  startAgainWhen?: (startLog: string) => boolean;
}
