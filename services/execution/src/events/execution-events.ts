import pg from 'pg';
import type { Logger } from '@gef/common';
import { executionChannel } from '../repositories/execution-repository';

/**
 * Announcements of execution changes (state or log), from every replica: each change is a
 * NOTIFY on `gef_execution` with the execution id, sent in the writing transaction. One
 * LISTEN connection per process fans them out to the watchers of that execution. After a
 * lost connection every watcher is poked, so nothing said meanwhile is missed.
 */
export class ExecutionEvents {
  private listener: pg.Client | undefined;
  private readonly watchers = new Map<string, Set<() => void>>();
  private stopped = false;
  private starting: Promise<void> | undefined;

  constructor(
    private readonly databaseUrl: string,
    private readonly logger: Logger,
  ) {}

  /** Connects and listens (retrying until it works or stop() is called). */
  start(): Promise<void> {
    if (this.listener || this.stopped) return Promise.resolve();
    this.starting ??= this.connect().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async connect(): Promise<void> {
    while (!this.stopped) {
      const client = new pg.Client({ connectionString: this.databaseUrl });
      try {
        await client.connect();
        client.on('notification', (msg) => {
          if (msg.channel === executionChannel && msg.payload) this.poke(msg.payload);
        });
        client.on('error', (err) => {
          this.logger.warn({ err: String(err) }, 'execution event listener lost its connection');
          void client.end().catch(() => undefined);
          if (this.listener === client) this.listener = undefined;
          if (!this.stopped) setTimeout(() => void this.start(), 500);
        });
        await client.query(`listen ${executionChannel}`);
        this.listener = client;
        this.pokeAll();
        return;
      } catch (err) {
        await client.end().catch(() => undefined);
        this.logger.warn({ err: String(err) }, 'execution event listener cannot connect; retrying');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.listener?.end().catch(() => undefined);
    this.listener = undefined;
    this.pokeAll();
  }

  get listening(): boolean {
    return this.listener !== undefined;
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
  }

  private pokeAll(): void {
    for (const set of this.watchers.values()) for (const fn of set) fn();
  }
}
