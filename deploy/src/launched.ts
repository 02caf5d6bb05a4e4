import type { ManagedProcess } from './process';

/**
 * A part that was spawned: its process group and a promise that settles when it is
 * ready (or rejects when it exits or times out first).
 */
export interface Launched {
  proc: ManagedProcess;
  ready: Promise<void>;
}
