import { Migration } from '@mikro-orm/migrations';

/**
 * The run path: concurrency slots, the pinned versions' run specs, log lines without a
 * sequence number (REST posts), and the indexes the lists and the slot queue use.
 */
export class Migration20261128000002 extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table execution add column if not exists slot_held boolean not null default false;');
    this.addSql('alter table execution_log alter column seq drop not null;');
    this.addSql(`
      create table if not exists script_run_spec (
        script_id uuid not null,
        version integer not null,
        script_user_id uuid not null,
        digest varchar(64) not null,
        size bigint not null default 0,
        runtime varchar(32) not null,
        environment_hash varchar(64) not null default '',
        requirements text not null default '',
        cpu_limit double precision not null default 0,
        memory_limit bigint not null default 0,
        timeout integer not null default 0,
        created_at timestamptz not null default now(),
        primary key (script_id, version)
      );`);
    // Lists of every execution (ADMIN+): newest first, and the updated_at filter.
    this.addSql('create index if not exists execution_start_idx on execution (start_date desc, id desc);');
    this.addSql('create index if not exists execution_updated_idx on execution (updated_at);');
    this.addSql('create index if not exists execution_script_start_idx on execution (script_id, start_date desc);');
    this.addSql('drop index if exists execution_script_idx;');
    // The slot queue: slots held per user, and a user's waiting runs, oldest first.
    this.addSql('create index if not exists execution_slot_idx on execution (user_id) where slot_held;');
    this.addSql("create index if not exists execution_waiting_idx on execution (user_id, start_date, id) where status = 'PENDING';");
  }

  override async down(): Promise<void> {
    this.addSql('drop index if exists execution_waiting_idx;');
    this.addSql('drop index if exists execution_slot_idx;');
    this.addSql('create index if not exists execution_script_idx on execution (script_id);');
    this.addSql('drop index if exists execution_script_start_idx;');
    this.addSql('drop index if exists execution_updated_idx;');
    this.addSql('drop index if exists execution_start_idx;');
    this.addSql('drop table if exists script_run_spec;');
    this.addSql('delete from execution_log where seq is null;');
    this.addSql('alter table execution_log alter column seq set not null;');
    this.addSql('alter table execution drop column if exists slot_held;');
  }
}
