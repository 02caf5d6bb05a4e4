import { Migration } from '@mikro-orm/migrations';

/** Executions and their log lines. */
export class Migration20261128000001 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table if not exists execution (
        id uuid primary key,
        script_id uuid not null,
        user_id uuid not null,
        status varchar(16) not null check (status in ('PENDING', 'READY', 'RUNNING', 'FINISHED', 'FAILED', 'CANCELLING', 'CANCELLED')),
        progress double precision not null default 0,
        params jsonb not null default '{}'::jsonb,
        results jsonb,
        start_date timestamptz not null default now(),
        end_date timestamptz,
        updated_at timestamptz not null default now(),
        script_version integer not null,
        queued_at timestamptz,
        attempt integer not null default 0
      );`);
    this.addSql('create index if not exists execution_user_idx on execution (user_id, start_date desc, id);');
    this.addSql('create index if not exists execution_user_updated_idx on execution (user_id, updated_at);');
    this.addSql('create index if not exists execution_script_idx on execution (script_id);');
    this.addSql("create index if not exists execution_active_idx on execution (status) where status in ('PENDING', 'READY', 'RUNNING', 'CANCELLING');");
    this.addSql(`
      create table if not exists execution_log (
        id bigserial primary key,
        execution_id uuid not null references execution (id) on delete cascade,
        attempt integer not null default 0,
        seq integer not null,
        level varchar(16) not null,
        text text not null,
        register_date timestamptz not null default now(),
        constraint execution_log_seq_unique unique (execution_id, attempt, seq)
      );`);
    this.addSql('create index if not exists execution_log_execution_idx on execution_log (execution_id, id);');
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists execution_log;');
    this.addSql('drop table if exists execution;');
  }
}
