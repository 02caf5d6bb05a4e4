import type { EntityManager } from '@mikro-orm/postgresql';
import { outboxRetrySql, type OutboxStore } from '@gef/common/outbox';
import type { RunExecutionInput } from '@gef/workflows';
import { isTerminal } from '../domain/statuses';
import type { ExecutionStatus } from '../entities/execution';
import { ExecutionRepository, nowSql, type Alongside } from './execution-repository';

/** The NOTIFY channel on which new outbox rows are announced (migration 5's trigger). */
export const dispatchChannel = 'execution_dispatch';

/** The outbox of runExecution starts (table execution_dispatch). */
export class DispatchRepository implements OutboxStore<RunExecutionInput> {
  constructor(private readonly em?: EntityManager) {}

  /** Records a run's workflow to start, with the execution's insert (see `ExecutionRepository.insert`). */
  static add(input: RunExecutionInput): Alongside {
    return {
      sql: 'insert into execution_dispatch (execution_id, input) values (?, ?::jsonb) on conflict (execution_id) do nothing',
      params: [input.executionId, JSON.stringify(input)],
    };
  }

  /**
   * Due rows. A run that already ended (cancelled before it started) needs no workflow,
   * unless it took its slot when accepted: its workflow gives the slot back.
   */
  async claim(em: EntityManager, limit: number): Promise<{ key: string; item: RunExecutionInput | undefined }[]> {
    const rows = await em.execute<{ execution_id: string; input: RunExecutionInput; status: ExecutionStatus; slot_held: boolean }[]>(
      `select d.execution_id, d.input, e.status, e.slot_held
         from execution_dispatch d join execution e on e.id = d.execution_id
        where d.next_at <= now()
        order by d.next_at, d.created_at
        limit ? for update of d skip locked`,
      [limit],
    );
    return rows.map((r) => ({
      key: r.execution_id,
      item: isTerminal(r.status) && !r.slot_held ? undefined : r.input,
    }));
  }

  /**
   * Removes the row. A run that took its slot when accepted is READY from here on (its
   * workflow hands it straight to a runner); the others become READY when they claim it.
   */
  async done(em: EntityManager, key: string): Promise<void> {
    const ready = await em.execute<{ id: string }[]>(
      `with gone as (delete from execution_dispatch where execution_id = ? returning input)
       update execution e set status = 'READY', updated_at = ${nowSql}
         from gone
        where e.id = ? and e.status = 'PENDING' and coalesce((gone.input->>'slotGranted')::boolean, false)
       returning e.id`,
      [key, key],
    );
    if (ready.length > 0) await new ExecutionRepository(em).notify(key);
  }

  async failed(em: EntityManager, key: string, error: string): Promise<void> {
    await em.execute(`update execution_dispatch set attempts = attempts + 1, next_at = ${outboxRetrySql('attempts')}, last_error = ? where execution_id = ?`, [
      error,
      key,
    ]);
  }

  async nextDue(em: EntityManager): Promise<Date | undefined> {
    const rows = await em.execute<{ next_at: Date | null }[]>('select min(next_at) as next_at from execution_dispatch');
    return rows[0]?.next_at ? new Date(rows[0].next_at) : undefined;
  }

  /** Rows still waiting (tests, health). */
  async pending(em: EntityManager): Promise<number> {
    const rows = await em.execute<{ n: string }[]>('select count(*) as n from execution_dispatch');
    return Number(rows[0]?.n ?? 0);
  }
}
