import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { describeError } from './logger';
import { PgListener } from './pg-listener';
import { within } from './within';


/**
 * A transactional outbox of workflow starts: a row is written in the same transaction as
 * the state it belongs to (an execution, a script version), and a dispatcher starts its
 * workflow once Temporal answers. Starting is idempotent (a workflow id that already
 * exists counts as started), so a row started twice by two replicas or after a crash
 * changes nothing.
 */
export interface OutboxStore<T> {
  /**
   * Rows due now, locked `FOR UPDATE SKIP LOCKED` in the caller's transaction so several
   * replicas never take the same row, oldest due first.
   */
  claim(em: EntityManager, limit: number): Promise<{ key: string; item: T | undefined }[]>;
  /** The row's workflow is started (or no longer needed): remove it. */
  done(em: EntityManager, key: string): Promise<void>;
  /** The start failed: count it and make the row due again later (see outboxRetrySql). */
  failed(em: EntityManager, key: string, error: string): Promise<void>;
  /** When the next row becomes due, if any. */
  nextDue(em: EntityManager): Promise<Date | undefined>;
}

export interface OutboxDispatcherOptions<T> {
  name: string;
  orm: MikroORM;
  store: OutboxStore<T>;
  /** Starts the workflow of one item; resolves when it is started or already exists. */
  start: (item: T) => Promise<void>;
  logger: Logger;
  /** Where new rows are announced (NOTIFY on insert), and the URL to listen with. */
  listen?: { databaseUrl: string; channel: string };
  /** Rows started per transaction. */
  batch?: number;
  /** Backoff after a failed pass: from `minBackoffMs`, doubling up to `maxBackoffMs`. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Largest wait without a wake-up (a sweep for announcements lost while not listening). */
  sweepMs?: number;
  /**
   * How long one start may take before it counts as failed (made due again later), 15 s
   * unless given: a Temporal client retries a server that does not answer without end of its
   * own, while the pass holds its rows locked and its transaction open.
   */
  startTimeoutMs?: number;
}

/**
 * SQL for a row's next try after `attempts` failed ones: 250 ms doubling up to 5 s (a row
 * that Temporal refuses for good never blocks the others; the rest start within seconds
 * of Temporal's return).
 */
export function outboxRetrySql(attemptsColumn: string): string {
  return `now() + least(interval '250 milliseconds' * power(2, least(${attemptsColumn}, 10)), interval '5 seconds')`;
}

/**
 * Starts the workflows of an outbox as soon as they can be: woken by NOTIFY when rows are
 * added (and when its LISTEN connection comes back), it takes due rows in small locked
 * batches, starts each and removes it. When a start or the database fails it stops the
 * pass and waits with a doubling backoff (never a tight loop); otherwise it sleeps until
 * the next row is due or a wake-up comes.
 */
export class OutboxDispatcher<T> {
  private stopped = false;
  private woken = false;
  private wake_: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private readonly listener: PgListener | undefined;
  private readonly batch: number;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly sweepMs: number;

  constructor(private readonly options: OutboxDispatcherOptions<T>) {
    this.batch = options.batch ?? 20;
    this.minBackoffMs = options.minBackoffMs ?? 250;
    this.maxBackoffMs = options.maxBackoffMs ?? 2000;
    this.sweepMs = options.sweepMs ?? 60_000;
    if (options.listen) {
      this.listener = new PgListener({
        databaseUrl: options.listen.databaseUrl,
        channels: [options.listen.channel],
        onNotification: () => this.wake(),
        onListening: () => this.wake(),
        logger: options.logger,
        name: options.name,
      });
    }
  }

  start(): void {
    if (this.loop || this.stopped) return;
    void this.listener?.start();
    this.loop = this.run();
  }

  /** Something may be due: run a pass as soon as the current wait allows. */
  wake(): void {
    this.woken = true;
    this.wake_?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake_?.();
    await this.listener?.stop();
    await this.loop;
  }

  /** Runs passes until nothing is due; resolves false when a pass failed (tests). */
  async drain(): Promise<boolean> {
    for (;;) {
      const outcome = await this.pass().catch(() => 'failed' as const);
      if (outcome === 'failed') return false;
      if (outcome === 'idle') return true;
    }
  }

  private async run(): Promise<void> {
    let backoff = this.minBackoffMs;
    while (!this.stopped) {
      this.woken = false;
      let outcome: 'idle' | 'more' | 'failed';
      try {
        outcome = await this.pass();
      } catch (err) {
        this.options.logger.warn({ err: describeError(err), retryInMs: backoff }, `${this.options.name}: outbox pass failed`);
        outcome = 'failed';
      }
      if (this.stopped) break;
      if (outcome === 'more') continue;
      if (outcome === 'failed') {
        // Wake-ups wait for the backoff: a dependency that is down is not asked again sooner.
        await this.sleep(backoff, false);
        backoff = Math.min(backoff * 2, this.maxBackoffMs);
        continue;
      }
      backoff = this.minBackoffMs;
      if (this.woken) continue;
      let waitMs = this.sweepMs;
      try {
        // One statement: no transaction around it (two round trips fewer per pass).
        const due = await this.options.store.nextDue(this.options.orm.em.fork());
        // A row due already, which the pass just done left: another dispatcher's pass holds
        // it (its start may take seconds), or it came after the claim (its NOTIFY wakes this
        // one). Looked at again shortly, not in a tight loop.
        if (due) {
          const untilDue = due.getTime() - Date.now();
          waitMs = untilDue > 0 ? Math.min(this.sweepMs, untilDue) : this.minBackoffMs;
        }
      } catch {
        waitMs = backoff;
      }
      if (waitMs > 0 && !this.woken) await this.sleep(waitMs, true);
    }
  }

  private sleep(ms: number, wakeable: boolean): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake_ = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake_ = wakeable ? done : () => (this.stopped ? done() : undefined);
    });
  }

  /**
   * One transaction: take due rows and start their workflows together (a burst of accepted
   * runs is not started one round trip at a time); started ones are removed, failed ones
   * made due again later. A pass with a failure reports it, so the loop backs off.
   */
  private async pass(): Promise<'idle' | 'more' | 'failed'> {
    const { store, start, logger, name } = this.options;
    return this.options.orm.em.fork().transactional(async (em) => {
      const rows = await store.claim(em, this.batch);
      const outcomes = await Promise.all(
        rows.map(async (row): Promise<{ ok: true } | { ok: false; err: unknown }> => {
          if (row.item === undefined) return { ok: true };
          try {
            await within(start(row.item), this.options.startTimeoutMs ?? 15_000, 'Temporal did not answer a start in time');
            return { ok: true };
          } catch (err) {
            return { ok: false, err };
          }
        }),
      );
      let failed = false;
      for (const [i, row] of rows.entries()) {
        const outcome = outcomes[i]!;
        if (outcome.ok) {
          await store.done(em, row.key);
          continue;
        }
        const err = outcome.err;
        failed = true;
        logger.warn({ err: describeError(err), key: row.key }, `${name}: could not deliver to Temporal; retrying`);
        await store.failed(em, row.key, String(err instanceof Error ? err.message : err).slice(0, 500));
      }
      if (failed) return 'failed';
      return rows.length === this.batch ? 'more' : 'idle';
    });
  }
}
