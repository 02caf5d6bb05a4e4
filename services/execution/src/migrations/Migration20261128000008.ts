import { Migration } from '@mikro-orm/migrations';

/**
 * Every execution created, changed or deleted also announces its owner on
 * `gef_execution_owner` (payload: the user id), whatever writes it, so a gateway can drop
 * the lists of that user it holds. Inserts announce once per statement and user (a
 * statement may add many rows); PostgreSQL folds repeats of one payload in a transaction.
 */
export class Migration20261128000008 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create or replace function gef_execution_changed() returns trigger language plpgsql as $$
      begin
        perform pg_notify('gef_execution', old.id::text);
        perform pg_notify('gef_execution_owner', old.user_id::text);
        return null;
      end $$;`);
    this.addSql(`
      create or replace function gef_execution_owner_added() returns trigger language plpgsql as $$
      begin
        perform pg_notify('gef_execution_owner', owner::text) from (select distinct user_id as owner from added) owners;
        return null;
      end $$;`);
    this.addSql('drop trigger if exists execution_owner_added on execution;');
    this.addSql(`
      create trigger execution_owner_added after insert on execution
      referencing new table as added for each statement execute function gef_execution_owner_added();`);
  }

  override async down(): Promise<void> {
    this.addSql('drop trigger if exists execution_owner_added on execution;');
    this.addSql('drop function if exists gef_execution_owner_added();');
    this.addSql(`
      create or replace function gef_execution_changed() returns trigger language plpgsql as $$
      begin
        perform pg_notify('gef_execution', old.id::text);
        return null;
      end $$;`);
  }
}
