import { Migration } from '@mikro-orm/migrations';

/**
 * How far the service has followed Keycloak's admin events (one row): the time of the
 * latest event acted on, and who held ADMIN and SUPERADMIN then, so a change nobody named
 * (a group deleted, a composite role changed) is found by comparison, across restarts.
 * Revocations of one user are looked up by user when a change is seen again.
 */
export class Migration20261128000006 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table if not exists keycloak_event_cursor (
        id smallint primary key default 1 check (id = 1),
        event_time bigint,
        holders jsonb,
        updated_at timestamptz not null default now()
      );`);
    this.addSql('insert into keycloak_event_cursor (id) values (1) on conflict (id) do nothing;');
    this.addSql('create index if not exists revocation_user_idx on revocation (user_id, not_before) where user_id is not null;');
  }

  override async down(): Promise<void> {
    this.addSql('drop index if exists revocation_user_idx;');
    this.addSql('drop table if exists keycloak_event_cursor;');
  }
}
