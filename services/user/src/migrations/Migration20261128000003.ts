import { Migration } from '@mikro-orm/migrations';

/**
 * Every change or deletion of a profile is announced on `gef_user_changed` (payload: the
 * user id), whatever writes it, so the gateways drop their cached copies at commit.
 */
export class Migration20261128000003 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create or replace function gef_user_profile_changed() returns trigger language plpgsql as $$
      begin
        perform pg_notify('gef_user_changed', old.id::text);
        return null;
      end $$;`);
    this.addSql('drop trigger if exists user_profile_changed on user_profile;');
    this.addSql(`
      create trigger user_profile_changed after update or delete on user_profile
      for each row execute function gef_user_profile_changed();`);
  }

  override async down(): Promise<void> {
    this.addSql('drop trigger if exists user_profile_changed on user_profile;');
    this.addSql('drop function if exists gef_user_profile_changed();');
  }
}
