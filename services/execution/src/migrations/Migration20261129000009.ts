import { Migration } from '@mikro-orm/migrations';

/**
 * `runner_attempt`: the attempt a runner executes now (set when it takes the run, cleared
 * when it reports how the attempt ended, or when the platform ends the run for it). A run
 * ended from outside while a runner still stops its script has it set: its event stream
 * waits for the runner's last lines before it ends.
 */
export class Migration20261129000009 extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table execution add column if not exists runner_attempt integer;');
  }

  override async down(): Promise<void> {
    this.addSql('alter table execution drop column if exists runner_attempt;');
  }
}
