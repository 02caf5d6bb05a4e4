import { Migration } from '@mikro-orm/migrations';

/**
 * Log lines check their execution once per statement instead of once per line. The foreign
 * key ran a trigger for every inserted line (a KEY SHARE lock of the same execution row each
 * time): a third of a 5,000-line append. Its place is taken by statement triggers over the
 * transition tables that do what it did: every execution of the new lines is locked KEY
 * SHARE (a concurrent delete waits for the append, or the append sees the execution gone)
 * and a line whose execution does not exist fails the statement (23503, as the foreign key
 * did); deleting executions deletes their lines.
 */
export class Migration20261128000006 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create or replace function gef_execution_log_parents() returns trigger language plpgsql as $$
      declare
        ids uuid[];
        locked integer;
        missing uuid;
      begin
        select array_agg(distinct execution_id) into ids from new_lines;
        select count(*) into locked from (select 1 from execution e where e.id = any (ids) for key share of e) l;
        if locked < coalesce(cardinality(ids), 0) then
          select x into missing from unnest(ids) as x where not exists (select 1 from execution e where e.id = x) limit 1;
          raise exception 'insert or update on table "execution_log" violates its execution reference'
            using errcode = 'foreign_key_violation', detail = format('Key (execution_id)=(%s) is not present in table "execution".', missing);
        end if;
        return null;
      end $$;`);
    this.addSql(`
      create or replace function gef_execution_log_cascade() returns trigger language plpgsql as $$
      begin
        delete from execution_log where execution_id in (select id from gone);
        return null;
      end $$;`);
    this.addSql('drop trigger if exists execution_log_parents_insert on execution_log;');
    this.addSql('drop trigger if exists execution_log_parents_update on execution_log;');
    this.addSql('drop trigger if exists execution_log_cascade on execution;');
    this.addSql(`
      create trigger execution_log_parents_insert after insert on execution_log
      referencing new table as new_lines for each statement execute function gef_execution_log_parents();`);
    this.addSql(`
      create trigger execution_log_parents_update after update on execution_log
      referencing new table as new_lines for each statement execute function gef_execution_log_parents();`);
    this.addSql(`
      create trigger execution_log_cascade after delete on execution
      referencing old table as gone for each statement execute function gef_execution_log_cascade();`);
    this.addSql('alter table execution_log drop constraint if exists execution_log_execution_id_fkey;');
  }

  override async down(): Promise<void> {
    this.addSql('drop trigger if exists execution_log_parents_insert on execution_log;');
    this.addSql('drop trigger if exists execution_log_parents_update on execution_log;');
    this.addSql('drop trigger if exists execution_log_cascade on execution;');
    this.addSql('drop function if exists gef_execution_log_parents();');
    this.addSql('drop function if exists gef_execution_log_cascade();');
    this.addSql('delete from execution_log l where not exists (select 1 from execution e where e.id = l.execution_id);');
    this.addSql('alter table execution_log add constraint execution_log_execution_id_fkey foreign key (execution_id) references execution (id) on delete cascade;');
  }
}
