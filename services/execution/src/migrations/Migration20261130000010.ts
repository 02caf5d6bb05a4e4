import { Migration } from '@mikro-orm/migrations';

/**
 * The outbox of stop signals: a row per run whose workflow is still to be told to stop
 * (cancelled, or ended from outside), written in the transaction that changes its status;
 * the dispatcher of `execution_dispatch` delivers it once Temporal answers and removes it.
 * Inserts are announced on the same channel (`execution_dispatch`), so that dispatcher
 * wakes at commit. A run that is never stopped has no row.
 */
export class Migration20261130000010 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table if not exists execution_stop_dispatch (
        execution_id uuid primary key references execution (id) on delete cascade,
        request jsonb not null,
        attempts integer not null default 0,
        next_at timestamptz not null default now(),
        last_error text,
        created_at timestamptz not null default now()
      );`);
    this.addSql('create index if not exists execution_stop_dispatch_next_idx on execution_stop_dispatch (next_at);');
    this.addSql('drop trigger if exists execution_stop_dispatch_added on execution_stop_dispatch;');
    this.addSql(`
      create trigger execution_stop_dispatch_added after insert on execution_stop_dispatch
      for each statement execute function gef_execution_dispatch_added();`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists execution_stop_dispatch;');
  }
}
