import { Migration } from '@mikro-orm/migrations';

/**
 * Password links sent later, through Temporal, when the mail server was away: each names
 * its request, and records when its e-mail went out, so a retried delivery mails once.
 */
export class Migration20261128000005 extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table password_token add column if not exists request_id varchar(200), add column if not exists mailed_at timestamptz;');
    this.addSql('create unique index if not exists password_token_request_idx on password_token (request_id) where request_id is not null;');
  }

  override async down(): Promise<void> {
    this.addSql('drop index if exists password_token_request_idx;');
    this.addSql('alter table password_token drop column if exists request_id, drop column if exists mailed_at;');
  }
}
