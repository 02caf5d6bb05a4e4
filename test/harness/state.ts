import type { Server } from 'node:http';
import type { Stack } from '@gef/deploy';

/** What globalSetup leaves for globalTeardown (same process, same globalThis). */
export interface Harness {
  stack: Stack;
  control: Server;
  dataDir: string;
  /** Where the tests' gates are made (helpers/executions.ts); removed at the end. */
  gatesDir: string;
  /** Removes the harness's process signal and exit handlers. */
  detach: () => void;
}

const KEY = '__gefHarness';

export function setHarness(harness: Harness): void {
  (globalThis as Record<string, unknown>)[KEY] = harness;
}

export function takeHarness(): Harness | undefined {
  const store = globalThis as Record<string, unknown>;
  const harness = store[KEY] as Harness | undefined;
  delete store[KEY];
  return harness;
}
