import { Migration } from '@mikro-orm/migrations';

/**
 * Runners online: each runner process reports itself every few seconds (ReportRunner), so
 * the service knows whether any is there to take a run. A row per runner process, replaced
 * at each report and marked `stopped` when it stops (a report of it arriving late changes it
 * no more); rows unseen for a day are removed by later reports.
 */
export class Migration20261201000011 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table if not exists runner_presence (
        instance varchar(64) primary key,
        runner varchar(200) not null,
        slots integer not null,
        busy integer not null,
        stopped boolean not null default false,
        seen_at timestamptz not null default now()
      );`);
    this.addSql('create index if not exists runner_presence_seen_idx on runner_presence (seen_at);');
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists runner_presence;');
  }
}
