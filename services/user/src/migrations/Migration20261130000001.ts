import { Migration } from '@mikro-orm/migrations';

/**
 * The outbox of password-link deliveries (workflow `sendPasswordLink`): a recovery request
 * writes its row in the one statement that looks the account up, and the service's
 * dispatcher starts the delivery once Temporal answers and removes the row. Inserts are
 * announced on `password_link_dispatch` (once per statement, rows or not).
 */
export class Migration20261130000001 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table if not exists password_link_dispatch (
        request_id uuid primary key,
        user_id uuid not null references user_profile (id) on delete cascade,
        purpose varchar(8) not null check (purpose in ('set', 'reset')),
        attempts integer not null default 0,
        next_at timestamptz not null default now(),
        last_error text,
        created_at timestamptz not null default now()
      );`);
    this.addSql('create index if not exists password_link_dispatch_next_idx on password_link_dispatch (next_at);');
    this.addSql(`
      create or replace function gef_password_link_dispatch_added() returns trigger language plpgsql as $$
      begin
        perform pg_notify('password_link_dispatch', '');
        return null;
      end $$;`);
    this.addSql('drop trigger if exists password_link_dispatch_added on password_link_dispatch;');
    this.addSql(`
      create trigger password_link_dispatch_added after insert on password_link_dispatch
      for each statement execute function gef_password_link_dispatch_added();`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists password_link_dispatch;');
    this.addSql('drop function if exists gef_password_link_dispatch_added();');
  }
}
