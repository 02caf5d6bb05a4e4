import { Migration } from '@mikro-orm/migrations';

/**
 * How many executions each user has, kept by statement triggers as rows come and go, so a
 * list's `total` needs no count over a user's (or everyone's) executions when nothing but
 * the owner narrows it. Built from the table as it stands, under a lock that keeps writers
 * out while it is counted. And the index a user's newest-first list reads.
 */
export class Migration20261128000004 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table if not exists execution_user_count (
        user_id uuid primary key,
        n bigint not null check (n >= 0)
      );`);
    this.addSql(`
      create or replace function gef_execution_counted_insert() returns trigger language plpgsql as $$
      begin
        insert into execution_user_count (user_id, n)
          select user_id, count(*) from added group by user_id order by user_id
        on conflict (user_id) do update set n = execution_user_count.n + excluded.n;
        return null;
      end $$;`);
    this.addSql(`
      create or replace function gef_execution_counted_delete() returns trigger language plpgsql as $$
      begin
        update execution_user_count c set n = c.n - gone.k
          from (select user_id, count(*) as k from removed group by user_id order by user_id) gone
          where c.user_id = gone.user_id;
        return null;
      end $$;`);
    this.addSql('lock table execution in share row exclusive mode;');
    this.addSql('drop trigger if exists execution_counted_insert on execution;');
    this.addSql('drop trigger if exists execution_counted_delete on execution;');
    this.addSql(`
      create trigger execution_counted_insert after insert on execution
      referencing new table as added for each statement execute function gef_execution_counted_insert();`);
    this.addSql(`
      create trigger execution_counted_delete after delete on execution
      referencing old table as removed for each statement execute function gef_execution_counted_delete();`);
    // A user's list, newest first, read straight off the index (the tiebreaker descends too).
    this.addSql('create index if not exists execution_user_start_idx on execution (user_id, start_date desc, id desc);');
    this.addSql('drop index if exists execution_user_idx;');
    this.addSql('delete from execution_user_count;');
    this.addSql('insert into execution_user_count (user_id, n) select user_id, count(*) from execution group by user_id;');
  }

  override async down(): Promise<void> {
    this.addSql('create index if not exists execution_user_idx on execution (user_id, start_date desc, id);');
    this.addSql('drop index if exists execution_user_start_idx;');
    this.addSql('drop trigger if exists execution_counted_insert on execution;');
    this.addSql('drop trigger if exists execution_counted_delete on execution;');
    this.addSql('drop function if exists gef_execution_counted_insert();');
    this.addSql('drop function if exists gef_execution_counted_delete();');
    this.addSql('drop table if exists execution_user_count;');
  }
}
