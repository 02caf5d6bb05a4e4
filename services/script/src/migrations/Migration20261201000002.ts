import { Migration } from '@mikro-orm/migrations';

/**
 * Users whose deletion has begun: the deleteUser step records the user here, under the
 * owner's advisory lock taken exclusively, in the transaction that deletes their scripts;
 * an upload of a new script takes that lock shared and refuses a recorded user. So a
 * script uploaded before the step is deleted by it, and none is stored after. A row
 * stays: user ids (Keycloak's UUIDs) are never given again.
 */
export class Migration20261201000002 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table if not exists deleted_user (
        user_id uuid primary key,
        deleted_at timestamptz not null default now()
      );`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists deleted_user;');
  }
}
