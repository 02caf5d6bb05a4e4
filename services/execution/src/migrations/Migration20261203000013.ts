import { Migration } from '@mikro-orm/migrations';

/**
 * Users whose deletion has begun: the deleteUser step records the user here (under the
 * owner's advisory lock, taken exclusively) before it removes their executions, and every
 * run's insert calls `execution_owner_accepts(user_id)`, which takes that lock shared (runs
 * of one user do not wait for each other) and refuses, with SQLSTATE GEFD1, a run of a
 * recorded user. So a run accepted before the record is committed, and found by the step,
 * and none is accepted after it. The function is volatile: its query sees what was
 * committed once it holds the lock, not what the calling statement's snapshot saw. A row
 * stays: user ids (Keycloak's UUIDs) are never given again.
 */
export class Migration20261203000013 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table if not exists deleted_user (
        user_id uuid primary key,
        deleted_at timestamptz not null default now()
      );`);
    this.addSql(`
      create or replace function execution_owner_accepts(owner uuid) returns boolean
      language plpgsql volatile as $$
      begin
        perform pg_advisory_xact_lock_shared(hashtextextended('execution-owner:' || owner::text, 0));
        if exists (select 1 from deleted_user where user_id = owner) then
          raise exception 'user % has been deleted', owner using errcode = 'GEFD1';
        end if;
        return true;
      end
      $$;`);
  }

  override async down(): Promise<void> {
    this.addSql('drop function if exists execution_owner_accepts(uuid);');
    this.addSql('drop table if exists deleted_user;');
  }
}
