import { Migration } from '@mikro-orm/migrations';

/**
 * The opt-in to terminal-status e-mails of runs (a profile column, so the profile trigger
 * announces its changes like any other), and the notices already sent, one per execution,
 * so a retried notice never mails twice.
 */
export class Migration20261128000004 extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table user_profile add column if not exists email_notifications_enabled boolean not null default false;');
    this.addSql(`
      create table if not exists execution_notice (
        execution_id uuid primary key,
        user_id uuid not null references user_profile (id) on delete cascade,
        status varchar(16) not null,
        created_at timestamptz not null default now(),
        sending_since timestamptz,
        sent_at timestamptz
      );`);
    this.addSql('create index if not exists execution_notice_user_idx on execution_notice (user_id);');
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists execution_notice;');
    this.addSql('alter table user_profile drop column if exists email_notifications_enabled;');
  }
}
