import type { EntityManager } from '@gef/common/orm';

/**
 * Archives that may have lost their last version, queued in the transaction that removed
 * the versions and handled afterwards (`releaseArtifacts`), so a crash never strands one.
 * Also archives about to be published by a version (`queueUnlessRecorded`), in case that
 * version never commits. `released_at` is when a row may be handled.
 */
export class ArtifactReleaseRepository {
  constructor(private readonly em: EntityManager) {}

  async queue(digests: string[]): Promise<void> {
    if (digests.length === 0) return;
    await this.em.execute(
      `insert into artifact_release (digest) select unnest(array[?]::text[]) on conflict (digest) do nothing`,
      [digests],
    );
  }

  /**
   * Queues an archive that an upload is about to publish, due `graceSeconds` from now, in a
   * transaction of its own (before the version's): when the version's transaction fails or
   * its process dies after the bytes are in place, the archive is removed then instead of
   * staying on disk for no version. The version's transaction takes the row out, and the
   * grace keeps a release from handling the row while that transaction may still commit.
   */
  async queueUnlessRecorded(digest: string, graceSeconds: number): Promise<void> {
    await this.em.execute(
      `insert into artifact_release (digest, released_at) values (?, now() + make_interval(secs => ?))
       on conflict (digest) do update set released_at = greatest(artifact_release.released_at, excluded.released_at)`,
      [digest, graceSeconds],
    );
  }

  async pending(limit = 1000): Promise<string[]> {
    const rows = await this.em.execute<{ digest: string }[]>(
      'select digest from artifact_release where released_at <= now() order by released_at limit ?',
      [limit],
    );
    return rows.map((r) => r.digest.trim());
  }

  async forget(digest: string): Promise<void> {
    await this.em.execute('delete from artifact_release where digest = ?', [digest]);
  }

  /**
   * Serialises everything that publishes or removes one archive, until the transaction
   * ends: an upload reusing an archive and its removal never interleave.
   */
  async lockDigest(digest: string): Promise<void> {
    await this.em.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [`artifact:${digest}`]);
  }
}
