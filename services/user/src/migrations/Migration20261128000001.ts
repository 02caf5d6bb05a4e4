import { Migration } from '@mikro-orm/migrations';

/** User profiles. */
export class Migration20261128000001 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table if not exists user_profile (
        id uuid primary key,
        email varchar(320) not null,
        name varchar(1000) not null,
        country varchar(200) not null default '',
        institution varchar(1000) not null default '',
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        constraint user_profile_email_unique unique (email)
      );`);
    this.addSql('create index if not exists user_profile_created_at_idx on user_profile (created_at, id);');
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists user_profile;');
  }
}
