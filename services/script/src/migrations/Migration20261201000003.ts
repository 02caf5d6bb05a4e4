import { Migration } from '@mikro-orm/migrations';

/**
 * Build log lines numbered by the build's workflow run too: a build started again under a
 * new run (its workflow terminated or reset in Temporal, then resumed by the housekeeping)
 * counts its attempts from 1 again, and its lines were taken for the earlier run's and
 * dropped. Lines of runners before it carry no run, and are numbered as one run.
 */
export class Migration20261201000003 extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table script_log add column if not exists build_run uuid;');
    this.addSql(
      "create unique index if not exists script_log_numbered_run_idx on script_log (script_id, version, coalesce(build_run, '00000000-0000-0000-0000-000000000000'::uuid), attempt, seq) where seq is not null;",
    );
    this.addSql('drop index if exists script_log_numbered_idx;');
  }

  override async down(): Promise<void> {
    // Numbered lines of a later run that the old numbering takes for an earlier run's: the later go.
    this.addSql(
      'delete from script_log l using script_log e where l.seq is not null and e.script_id = l.script_id and e.version = l.version and e.attempt = l.attempt and e.seq = l.seq and e.id < l.id;',
    );
    this.addSql('create unique index if not exists script_log_numbered_idx on script_log (script_id, version, attempt, seq) where seq is not null;');
    this.addSql('drop index if exists script_log_numbered_run_idx;');
    this.addSql('alter table script_log drop column if exists build_run;');
  }
}
