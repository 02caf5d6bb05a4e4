import { Migration } from '@mikro-orm/migrations';

/** Scripts, their immutable versions and build logs. */
export class Migration20261128000001 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table if not exists script (
        id uuid primary key,
        slug varchar(80) not null,
        name varchar(1000) not null,
        description text not null default '',
        status varchar(16) not null check (status in ('PENDING', 'BUILDING', 'SUCCESS', 'FAIL')),
        public boolean not null default false,
        user_id uuid not null,
        version integer not null default 0,
        runtime varchar(64) not null default 'python3',
        cpu_limit double precision,
        memory_limit bigint,
        timeout integer,
        params_schema jsonb,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        constraint script_slug_unique unique (slug)
      );`);
    this.addSql('create index if not exists script_user_id_idx on script (user_id, created_at);');
    this.addSql('create index if not exists script_public_idx on script (public) where public;');
    this.addSql(`
      create table if not exists script_version (
        script_id uuid not null references script (id) on delete cascade,
        number integer not null,
        digest char(64) not null,
        size bigint not null,
        configuration jsonb not null,
        created_at timestamptz not null default now(),
        primary key (script_id, number)
      );`);
    this.addSql(`
      create table if not exists script_log (
        id bigserial primary key,
        script_id uuid not null references script (id) on delete cascade,
        text text not null,
        register_date timestamptz not null default now()
      );`);
    this.addSql('create index if not exists script_log_script_idx on script_log (script_id, id);');
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists script_log;');
    this.addSql('drop table if exists script_version;');
    this.addSql('drop table if exists script;');
  }
}
