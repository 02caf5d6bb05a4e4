import { Migration } from '@mikro-orm/migrations';

/**
 * Every change or deletion of an execution row is announced on `gef_execution` (payload:
 * the execution id), whatever writes it, so watchers and the gateways' cached copies can
 * never miss one. PostgreSQL folds it with the service's own NOTIFY of the same id in the
 * same transaction.
 */
export class Migration20261128000003 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create or replace function gef_execution_changed() returns trigger language plpgsql as $$
      begin
        perform pg_notify('gef_execution', old.id::text);
        return null;
      end $$;`);
    this.addSql('drop trigger if exists execution_changed on execution;');
    this.addSql(`
      create trigger execution_changed after update or delete on execution
      for each row execute function gef_execution_changed();`);
  }

  override async down(): Promise<void> {
    this.addSql('drop trigger if exists execution_changed on execution;');
    this.addSql('drop function if exists gef_execution_changed();');
  }
}
