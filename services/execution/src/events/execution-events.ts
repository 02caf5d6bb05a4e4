import { PgListener, type PgListenerOptions } from '@gef/common/pg-listener';
import type { Logger } from '@gef/common';
import { executionChannel, executionOwnerChannel } from '../repositories/execution-repository';

/**
 * Announcements of execution changes (state or log), from every replica: each change is a
 * NOTIFY on `gef_execution` with the execution id, sent in the writing transaction, and
 * each execution created, changed or deleted a NOTIFY on `gef_execution_owner` with its
 * owner's id. One LISTEN connection per process fans them out to the watchers of that
 * execution. After a lost connection every watcher is poked, so nothing said meanwhile is
 * missed; a connection that died silently counts as lost once its liveness probe fails.
 */
export class ExecutionEvents {
  private readonly listener: PgListener;
  private readonly watchers = new Map<string, Set<() => void>>();
  private readonly everyChange = new Set<(executionId: string | undefined) => void>();
  private readonly ownerChanges = new Set<(userId: string) => void>();

  constructor(databaseUrl: string, logger: Logger, probe: Pick<PgListenerOptions, 'probeIntervalMs' | 'probeTimeoutMs'> = {}) {
    this.listener = new PgListener({
      ...probe,
      databaseUrl,
      channels: [executionChannel, executionOwnerChannel],
      onNotification: (channel, payload) => {
        if (!payload) return;
        if (channel === executionChannel) this.poke(payload);
        else if (channel === executionOwnerChannel) for (const fn of this.ownerChanges) fn(payload);
      },
      onListening: () => this.pokeAll(),
      onLost: () => this.pokeAll(),
      logger,
      name: 'execution events',
    });
  }

  /** Connects and listens (retrying until it works or stop() is called). */
  start(): Promise<void> {
    return this.listener.start();
  }

  async stop(): Promise<void> {
    await this.listener.stop();
  }

  /** Connected and listening, as far as the listener's last liveness probe knows. */
  get listening(): boolean {
    return this.listener.listening;
  }

  /**
   * Calls `onChange(id)` after any execution changes, and `onChange(undefined)` when
   * changes may have been missed (the connection was lost or came back).
   */
  subscribeAll(onChange: (executionId: string | undefined) => void): () => void {
    this.everyChange.add(onChange);
    return () => this.everyChange.delete(onChange);
  }

  /**
   * Calls `onChange(userId)` after an execution of the user is created, changed or deleted.
   * Missed announcements are reported to `subscribeAll` (as `undefined`), not here.
   */
  subscribeOwners(onChange: (userId: string) => void): () => void {
    this.ownerChanges.add(onChange);
    return () => this.ownerChanges.delete(onChange);
  }

  /** Calls `onChange` whenever the execution may have changed; returns the unsubscribe. */
  subscribe(executionId: string, onChange: () => void): () => void {
    let set = this.watchers.get(executionId);
    if (!set) {
      set = new Set();
      this.watchers.set(executionId, set);
    }
    set.add(onChange);
    return () => {
      const current = this.watchers.get(executionId);
      current?.delete(onChange);
      if (current?.size === 0) this.watchers.delete(executionId);
    };
  }

  private poke(executionId: string): void {
    for (const fn of this.watchers.get(executionId) ?? []) fn();
    for (const fn of this.everyChange) fn(executionId);
  }

  private pokeAll(): void {
    for (const set of this.watchers.values()) for (const fn of set) fn();
    for (const fn of this.everyChange) fn(undefined);
  }
}
