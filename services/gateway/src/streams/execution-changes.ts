import type { Client } from '@connectrpc/connect';
import type { Logger } from '@gef/common';
import type { execution } from '@gef/protos';
import { StreamFollower } from './stream-follower';

/**
 * The ids of executions as they change, and the users whose executions were created,
 * changed or deleted, followed from the execution service's WatchChanges stream, for
 * whatever the gateway holds copies of.
 */
export class ExecutionChanges {
  private readonly stream: StreamFollower<execution.WatchChangesResponse>;
  private readonly listeners = new Set<(executionId: string | undefined) => void>();
  private readonly ownerListeners = new Set<(userId: string | undefined) => void>();
  /** The service's last batch said it is not following changes now. */
  private paused = false;

  constructor(client: Client<typeof execution.ExecutionService>, logger: Logger) {
    this.stream = new StreamFollower({
      name: 'execution changes',
      open: (signal) => client.watchChanges({}, { signal, timeoutMs: 0 }),
      onMessage: (res) => {
        this.paused = res.paused;
        if (res.reset) this.reset();
        for (const id of res.executionIds) this.changed(id);
        for (const id of res.ownerIds) this.ownerChanged(id);
      },
      onGap: () => this.reset(),
      logger,
    });
  }

  start(waitMs = 5000): Promise<void> {
    return this.stream.start(waitMs);
  }

  stop(): void {
    this.stream.stop();
  }

  /**
   * Following the changes: the stream is read, and the service follows the database's (a
   * service whose listener is away says so in every batch until it is back; copies kept
   * meanwhile would miss the changes it cannot announce).
   */
  get isConnected(): boolean {
    return this.stream.isConnected && !this.paused;
  }

  /**
   * Calls `listener(id)` when an execution changes, and `listener(undefined)` when changes
   * may have been missed. Returns a function that removes the listener.
   */
  onChange(listener: (executionId: string | undefined) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Calls `listener(userId)` when an execution of the user is created, changes or is
   * deleted, and `listener(undefined)` when changes may have been missed. Returns a
   * function that removes the listener.
   */
  onOwnerChange(listener: (userId: string | undefined) => void): () => void {
    this.ownerListeners.add(listener);
    return () => this.ownerListeners.delete(listener);
  }

  private changed(executionId: string): void {
    for (const listener of this.listeners) listener(executionId);
  }

  private ownerChanged(userId: string): void {
    for (const listener of this.ownerListeners) listener(userId);
  }

  private reset(): void {
    for (const listener of this.listeners) listener(undefined);
    for (const listener of this.ownerListeners) listener(undefined);
  }
}
