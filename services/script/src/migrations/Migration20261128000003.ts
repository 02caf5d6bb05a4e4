import { Migration } from '@mikro-orm/migrations';

/**
 * The outbox of buildScript starts: a row per version whose build workflow is still to be
 * started, written in the transaction that records the version; the service's dispatcher
 * starts it once Temporal answers and removes it. Inserts are announced on
 * `build_dispatch`, so the dispatcher wakes at commit.
 */
export class Migration20261128000003 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table if not exists build_dispatch (
        script_id uuid not null,
        version integer not null,
        attempts integer not null default 0,
        next_at timestamptz not null default now(),
        last_error text,
        created_at timestamptz not null default now(),
        primary key (script_id, version),
        foreign key (script_id, version) references script_version (script_id, number) on delete cascade
      );`);
    this.addSql('create index if not exists build_dispatch_next_idx on build_dispatch (next_at);');
    this.addSql(`
      create or replace function gef_build_dispatch_added() returns trigger language plpgsql as $$
      begin
        perform pg_notify('build_dispatch', '');
        return null;
      end $$;`);
    this.addSql('drop trigger if exists build_dispatch_added on build_dispatch;');
    this.addSql(`
      create trigger build_dispatch_added after insert on build_dispatch
      for each statement execute function gef_build_dispatch_added();`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists build_dispatch;');
    this.addSql('drop function if exists gef_build_dispatch_added();');
  }
}
