import type { ExecutionEvents } from './execution-events';

/** What a watcher of every change receives. */
export interface ChangeBatch {
  executionIds: string[];
  /** Users an execution of whom was created, changed or deleted. */
  ownerIds: string[];
  /** Changes may have been missed: every copy is stale. */
  reset: boolean;
  /** Changes are not followed now (the listener is away): no copy may be trusted until a batch without it. */
  paused: boolean;
}

/**
 * The ids of executions as they change, and their owners, batched (whatever arrived while the last batch was
 * being sent goes in the next), until the signal aborts. The first batch is empty: the
 * watcher is in sync from then on. An empty batch follows every `keepAliveMs` so both ends
 * notice a dead connection.
 */
export async function* watchChanges(events: ExecutionEvents, signal: AbortSignal, keepAliveMs = 15_000): AsyncGenerator<ChangeBatch> {
  let pending = new Set<string>();
  let owners = new Set<string>();
  let reset = false;
  let keepAlive = false;
  let wake: (() => void) | undefined;
  const unsubscribe = events.subscribeAll((id) => {
    if (id === undefined) reset = true;
    else pending.add(id);
    wake?.();
  });
  const unsubscribeOwners = events.subscribeOwners((userId) => {
    owners.add(userId);
    wake?.();
  });
  const stop = () => wake?.();
  signal.addEventListener('abort', stop);
  const timer = setInterval(() => {
    keepAlive = true;
    wake?.();
  }, keepAliveMs);
  try {
    // Subscribed before this: nothing after it is missed.
    yield { executionIds: [], ownerIds: [], reset: !events.listening, paused: !events.listening };
    while (!signal.aborted) {
      if (pending.size > 0 || owners.size > 0 || reset || keepAlive) {
        const batch = { executionIds: [...pending], ownerIds: [...owners], reset, paused: !events.listening };
        pending = new Set();
        owners = new Set();
        reset = false;
        keepAlive = false;
        yield batch;
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
  } finally {
    clearInterval(timer);
    unsubscribe();
    unsubscribeOwners();
    signal.removeEventListener('abort', stop);
  }
}
