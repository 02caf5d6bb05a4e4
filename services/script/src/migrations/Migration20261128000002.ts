import { Migration } from '@mikro-orm/migrations';

/**
 * Versions carry their build: status, environment hash, requirements and the uploaded
 * file name; log lines name the version that wrote them; digests are indexed for the
 * "does any other version use this archive" check. Archives whose last version went are
 * queued in artifact_release (in the same transaction), so a crash never strands a file.
 */
export class Migration20261128000002 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      alter table script_version
        add column if not exists status varchar(16) not null default 'PENDING'
          check (status in ('PENDING', 'BUILDING', 'SUCCESS', 'FAIL')),
        add column if not exists environment_hash char(64),
        add column if not exists requirements text not null default '',
        add column if not exists file_name varchar(1000) not null default '',
        add column if not exists built_at timestamptz;`);
    this.addSql('create index if not exists script_version_digest_idx on script_version (digest);');
    this.addSql('alter table script_log add column if not exists version integer;');
    this.addSql(`
      create table if not exists artifact_release (
        digest char(64) primary key,
        released_at timestamptz not null default now()
      );`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists artifact_release;');
    this.addSql('alter table script_log drop column if exists version;');
    this.addSql('drop index if exists script_version_digest_idx;');
    this.addSql(`
      alter table script_version
        drop column if exists status,
        drop column if exists environment_hash,
        drop column if exists requirements,
        drop column if exists file_name,
        drop column if exists built_at;`);
  }
}
