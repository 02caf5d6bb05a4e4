import { Migration } from '@mikro-orm/migrations';

/**
 * The outbox of runExecution starts: a row per execution whose workflow is still to be
 * started, written in the transaction that stores the execution; the service's dispatcher
 * starts it once Temporal answers and removes it. Inserts are announced on
 * `execution_dispatch`, so the dispatcher wakes at commit.
 */
export class Migration20261128000005 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table if not exists execution_dispatch (
        execution_id uuid primary key references execution (id) on delete cascade,
        input jsonb not null,
        attempts integer not null default 0,
        next_at timestamptz not null default now(),
        last_error text,
        created_at timestamptz not null default now()
      );`);
    this.addSql('create index if not exists execution_dispatch_next_idx on execution_dispatch (next_at);');
    this.addSql(`
      create or replace function gef_execution_dispatch_added() returns trigger language plpgsql as $$
      begin
        perform pg_notify('execution_dispatch', '');
        return null;
      end $$;`);
    this.addSql('drop trigger if exists execution_dispatch_added on execution_dispatch;');
    this.addSql(`
      create trigger execution_dispatch_added after insert on execution_dispatch
      for each statement execute function gef_execution_dispatch_added();`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists execution_dispatch;');
    this.addSql('drop function if exists gef_execution_dispatch_added();');
  }
}
