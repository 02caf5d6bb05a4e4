import { Migration } from '@mikro-orm/migrations';

/**
 * Build log lines numbered by the runner (its attempt, and each line's place in that
 * attempt's output): a batch a runner sends again, its answer lost, is stored once. Lines
 * of the service's own, and of runners before numbering, carry none.
 */
export class Migration20261201000001 extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table script_log add column if not exists attempt integer, add column if not exists seq integer;');
    this.addSql('create unique index if not exists script_log_numbered_idx on script_log (script_id, version, attempt, seq) where seq is not null;');
  }

  override async down(): Promise<void> {
    this.addSql('drop index if exists script_log_numbered_idx;');
    this.addSql('alter table script_log drop column if exists attempt, drop column if exists seq;');
  }
}
