import { Migration } from '@mikro-orm/migrations';

/** Password tokens, token revocations, and mail preferences. */
export class Migration20261128000002 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table if not exists password_token (
        digest char(64) primary key,
        user_id uuid not null references user_profile (id) on delete cascade,
        purpose varchar(16) not null check (purpose in ('set', 'reset')),
        expires_at timestamptz not null,
        used_at timestamptz,
        created_at timestamptz not null default now()
      );`);
    this.addSql('create index if not exists password_token_user_idx on password_token (user_id);');
    this.addSql(`
      create table if not exists revocation (
        id bigserial primary key,
        user_id uuid,
        session_id varchar(100),
        not_before timestamptz not null,
        expires_at timestamptz not null,
        check ((user_id is null) <> (session_id is null))
      );`);
    this.addSql('create index if not exists revocation_expires_idx on revocation (expires_at);');
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists revocation;');
    this.addSql('drop table if exists password_token;');
  }
}
