import { Migration } from '@mikro-orm/migrations';

/**
 * The outbox of user deletions (workflow `deleteUser`): `DeleteUser` writes a user's row
 * before it disables the login, held (due later) while the request disables the login and
 * revokes the tokens, then makes it due; the service's dispatcher starts the workflow once
 * Temporal answers and removes the row. A request that dies halfway leaves its row held,
 * and the deletion starts when the hold ends. No foreign key: the row outlives the profile
 * the workflow removes last. Inserts, and changes that make a row due, are announced on
 * `user_deletion_dispatch`.
 */
export class Migration20261201000001 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table if not exists user_deletion_dispatch (
        user_id uuid primary key,
        attempts integer not null default 0,
        next_at timestamptz not null default now(),
        last_error text,
        created_at timestamptz not null default now()
      );`);
    this.addSql('create index if not exists user_deletion_dispatch_next_idx on user_deletion_dispatch (next_at);');
    this.addSql(`
      create or replace function gef_user_deletion_dispatch_changed() returns trigger language plpgsql as $$
      begin
        if tg_op = 'INSERT' or new.next_at <= now() then
          perform pg_notify('user_deletion_dispatch', '');
        end if;
        return null;
      end $$;`);
    this.addSql('drop trigger if exists user_deletion_dispatch_changed on user_deletion_dispatch;');
    this.addSql(`
      create trigger user_deletion_dispatch_changed after insert or update of next_at on user_deletion_dispatch
      for each row execute function gef_user_deletion_dispatch_changed();`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists user_deletion_dispatch;');
    this.addSql('drop function if exists gef_user_deletion_dispatch_changed();');
  }
}
