import type { EntityManager } from '@gef/common/orm';

/**
 * Archives that may have lost their last version, queued in the transaction that removed
 * the versions and handled afterwards (`releaseArtifacts`), so a crash never strands one.
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

  async pending(limit = 1000): Promise<string[]> {
    const rows = await this.em.execute<{ digest: string }[]>('select digest from artifact_release order by released_at limit ?', [limit]);
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
