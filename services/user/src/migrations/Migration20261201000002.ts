import { Migration } from '@mikro-orm/migrations';

/**
 * A password-link request may hold several tokens: a delivery retried after a try whose
 * e-mail may have gone out (the mail server's answer lost, or the process stopped before
 * `mailed_at` was written) keeps that try's token valid and mails a new one. The index on
 * `request_id` is no longer unique.
 */
export class Migration20261201000002 extends Migration {
  override async up(): Promise<void> {
    this.addSql('drop index if exists password_token_request_idx;');
    this.addSql('create index if not exists password_token_request_id_idx on password_token (request_id) where request_id is not null;');
  }

  override async down(): Promise<void> {
    this.addSql('drop index if exists password_token_request_id_idx;');
    this.addSql('create unique index if not exists password_token_request_idx on password_token (request_id) where request_id is not null;');
  }
}
