import type { EntityManager } from '@mikro-orm/postgresql';
import { outboxRetrySql, type OutboxStore } from '@gef/common/outbox';
import type { RunExecutionInput, StopRequest } from '@gef/workflows';
import { isTerminal } from '../domain/statuses';
import type { ExecutionStatus } from '../entities/execution';
import { ExecutionRepository, nowSql, type Alongside } from './execution-repository';

/** The NOTIFY channel on which new outbox rows are announced (migrations 5 and 10). */
export const dispatchChannel = 'execution_dispatch';

/** What the dispatcher tells Temporal: start a run's workflow, or tell it to stop. */
export type RunDispatch =
  | { kind: 'start'; input: RunExecutionInput }
  | { kind: 'stop'; executionId: string; request: StopRequest }
  /**
   * A run that ended before its workflow started, under a limit of its user's runs: no
   * workflow of it gives a slot back and wakes the runs behind it, so the dispatcher wakes
   * those that now fit (a slot freed meanwhile may have named this one to wake).
   */
  | { kind: 'wake'; userId: string; limit: number };

/** Keys of stop rows (start rows are keyed by the execution id alone). */
const stopKeyPrefix = 'stop:';

/**
 * The outbox of the runs' workflows: their starts (table execution_dispatch, written with
 * the execution) and their stop signals (table execution_stop_dispatch, written with the
 * status change that asks for it). One dispatcher delivers both, retrying until Temporal
 * takes them; both deliveries are idempotent (an existing workflow counts as started, a
 * workflow keeps the first stop it is told and one that has ended needs none).
 */
export class DispatchRepository implements OutboxStore<RunDispatch> {
  /**
   * `whenReady`: called in `done`'s transaction, with the row locked, for a run it made
   * READY (its attempt: the run's log line's).
   */
  constructor(
    private readonly em?: EntityManager,
    private readonly whenReady?: (em: EntityManager, executionId: string, attempt: number) => Promise<void>,
  ) {}

  /** Records a run's workflow to start, with the execution's insert (see `ExecutionRepository.insert`). */
  static add(input: RunExecutionInput): Alongside {
    return {
      sql: 'insert into execution_dispatch (execution_id, input) values (?, ?::jsonb) on conflict (execution_id) do nothing',
      params: [input.executionId, JSON.stringify(input)],
    };
  }

  /**
   * Records that a run's workflow must be told to stop, in the caller's transaction (the one
   * that cancels or ends the run). A stop not delivered yet stays as it is: the workflow
   * would keep the first one anyway.
   */
  /**
   * Drops the starts not yet delivered of a user's runs (their user is being deleted: no
   * workflow of theirs may start after their runs are told to stop). A start being delivered
   * holds its row: it is waited for, and its workflow then exists to be told.
   */
  async dropStartsOfUser(userId: string): Promise<number> {
    if (!this.em) throw new Error('DispatchRepository.dropStartsOfUser needs an EntityManager');
    const rows = await this.em.execute<{ execution_id: string }[]>(
      'delete from execution_dispatch d using execution e where e.id = d.execution_id and e.user_id = ? returning d.execution_id',
      [userId],
    );
    return rows.length;
  }

  async addStop(executionId: string, request: StopRequest): Promise<void> {
    if (!this.em) throw new Error('DispatchRepository.addStop needs an EntityManager');
    await this.em.execute('insert into execution_stop_dispatch (execution_id, request) values (?, ?::jsonb) on conflict (execution_id) do nothing', [
      executionId,
      JSON.stringify(request),
    ]);
  }

  /**
   * Due rows in one statement, stops first (at most `limit` in all). A run that already
   * ended (cancelled before it started) needs no workflow, unless it took its slot when
   * accepted: its workflow gives the slot back. A stop waits while its run's start is in
   * the outbox (due later, or being delivered): a workflow that does not exist when it is
   * told has then ended (or was never needed), and one started after it would miss it
   * (a run that took its slot when accepted goes to the runners without asking, and would
   * hold the slot until one of them picks it).
   */
  async claim(em: EntityManager, limit: number): Promise<{ key: string; item: RunDispatch | undefined }[]> {
    const rows = await em.execute<
      { kind: 'start' | 'stop'; execution_id: string; input: RunExecutionInput | null; status: ExecutionStatus | null; slot_held: boolean | null; request: StopRequest | null }[]
    >(
      `with stops as (
         select s.execution_id, s.request
           from execution_stop_dispatch s
          where s.next_at <= now()
            and not exists (select 1 from execution_dispatch d where d.execution_id = s.execution_id)
          order by s.next_at, s.created_at
          limit ? for update skip locked),
       starts as (
         select d.execution_id, d.input, e.status, e.slot_held
           from execution_dispatch d join execution e on e.id = d.execution_id
          where d.next_at <= now()
          order by d.next_at, d.created_at
          limit greatest(? - (select count(*) from stops), 0) for update of d skip locked)
       select 'stop' as kind, execution_id, null::jsonb as input, null::text as status, null::boolean as slot_held, request from stops
       union all
       select 'start', execution_id, input, status, slot_held, null from starts`,
      [limit, limit],
    );
    return rows.map((r) => {
      if (r.kind === 'stop') return { key: `${stopKeyPrefix}${r.execution_id}`, item: { kind: 'stop', executionId: r.execution_id, request: r.request! } };
      const input = r.input!;
      if (!isTerminal(r.status!) || r.slot_held) return { key: r.execution_id, item: { kind: 'start', input } };
      return { key: r.execution_id, item: input.concurrencyLimit === null ? undefined : { kind: 'wake', userId: input.userId, limit: input.concurrencyLimit } };
    });
  }

  /**
   * Removes the row. A run that took its slot when accepted is READY once its start is
   * done (its workflow hands it straight to a runner); the others become READY when they
   * claim it.
   */
  async done(em: EntityManager, key: string): Promise<void> {
    if (key.startsWith(stopKeyPrefix)) {
      await em.execute('delete from execution_stop_dispatch where execution_id = ?', [key.slice(stopKeyPrefix.length)]);
      return;
    }
    const ready = await em.execute<{ id: string; attempt: number }[]>(
      `with gone as (delete from execution_dispatch where execution_id = ? returning input)
       update execution e set status = 'READY', updated_at = ${nowSql}
         from gone
        where e.id = ? and e.status = 'PENDING' and coalesce((gone.input->>'slotGranted')::boolean, false)
       returning e.id, e.attempt`,
      [key, key],
    );
    if (ready.length === 0) return;
    await this.whenReady?.(em, key, Number(ready[0]!.attempt));
    await new ExecutionRepository(em).notify(key);
  }

  async failed(em: EntityManager, key: string, error: string): Promise<void> {
    const [table, id] = key.startsWith(stopKeyPrefix) ? ['execution_stop_dispatch', key.slice(stopKeyPrefix.length)] : ['execution_dispatch', key];
    await em.execute(`update ${table} set attempts = attempts + 1, next_at = ${outboxRetrySql('attempts')}, last_error = ? where execution_id = ?`, [error, id]);
  }

  /** When the next row becomes due; a stop waiting for its run's start is due with it. */
  async nextDue(em: EntityManager): Promise<Date | undefined> {
    const rows = await em.execute<{ next_at: Date | null }[]>(
      `select least(
         (select min(next_at) from execution_dispatch),
         (select min(s.next_at) from execution_stop_dispatch s where not exists (select 1 from execution_dispatch d where d.execution_id = s.execution_id))
       ) as next_at`,
    );
    return rows[0]?.next_at ? new Date(rows[0].next_at) : undefined;
  }

  /** Rows still waiting, starts and stops (tests, health). */
  async pending(em: EntityManager): Promise<number> {
    const rows = await em.execute<{ n: string }[]>('select (select count(*) from execution_dispatch) + (select count(*) from execution_stop_dispatch) as n');
    return Number(rows[0]?.n ?? 0);
  }
}
