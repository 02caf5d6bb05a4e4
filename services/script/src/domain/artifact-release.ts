import { ArtifactReleaseRepository } from '../repositories/artifact-release-repository';
import { ScriptVersionRepository } from '../repositories/script-version-repository';
import type { ScriptDeps } from './deps';

/**
 * Removes queued archives that no version uses any more. Each digest is handled under its
 * lock, so an upload publishing the same bytes at that moment either keeps it or comes
 * after and writes it again. Safe to run at any time and more than once.
 */
export async function releaseArtifacts(deps: Pick<ScriptDeps, 'orm' | 'store' | 'logger'>): Promise<number> {
  const pending = await new ArtifactReleaseRepository(deps.orm.em.fork()).pending();
  let removed = 0;
  for (const digest of pending) {
    await deps.orm.em.fork().transactional(async (em) => {
      const releases = new ArtifactReleaseRepository(em);
      await releases.lockDigest(digest);
      if (!(await new ScriptVersionRepository(em).isDigestUsed(digest))) {
        if (await deps.store.delete(digest)) removed++;
      }
      await releases.forget(digest);
    });
  }
  if (removed > 0) deps.logger.info({ removed }, 'archives removed');
  return removed;
}
