import { Migration } from '@mikro-orm/migrations';

/**
 * What a run's script has appended to its log itself, with its API_TOKEN over the REST API
 * (`POST /execution/<id>/log`): lines and bytes of text, so that path has the limits the
 * runner holds what a script prints to (RUN_LOG_MAX_LINES, RUN_LOG_MAX_BYTES).
 */
export class Migration20261204000014 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      alter table execution
        add column if not exists api_log_lines integer not null default 0,
        add column if not exists api_log_bytes bigint not null default 0;`);
  }

  override async down(): Promise<void> {
    this.addSql('alter table execution drop column if exists api_log_lines, drop column if exists api_log_bytes;');
  }
}
