import { Migration } from '@mikro-orm/migrations';

/**
 * The date after an execution's last log line, as committed when it is called: a volatile
 * function's query takes a snapshot of its own, where a subquery of the calling statement
 * sees only what was committed when that statement began. A statement that takes the run's
 * row lock and appends lines in one go (a runner's first line, its last lines) calls it once
 * it holds the lock, so a line another transaction committed while it waited comes first.
 */
export class Migration20261202000012 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create or replace function execution_log_after_last(target uuid) returns timestamptz
      language plpgsql volatile as $$
      begin
        return (select l.register_date + interval '1 millisecond' from execution_log l where l.execution_id = target order by l.id desc limit 1);
      end
      $$;`);
  }

  override async down(): Promise<void> {
    this.addSql('drop function if exists execution_log_after_last(uuid);');
  }
}
