import { isDependencyUnavailable } from '@gef/common';
import { ArtifactReleaseRepository } from '../repositories/artifact-release-repository';
import { ScriptVersionRepository } from '../repositories/script-version-repository';
import type { ScriptDeps } from './deps';

/**
 * Removes queued archives that no version uses any more. Each digest is handled under its
 * lock, so an upload publishing the same bytes at that moment either keeps it or comes
 * after and writes it again. Safe to run at any time and more than once. An archive the
 * store cannot remove (a file it may not unlink) stays queued for the next pass and holds
 * up no other: a user's deletion, which ends with a pass, does not wait on it.
 */
export async function releaseArtifacts(deps: Pick<ScriptDeps, 'orm' | 'store' | 'logger'>): Promise<number> {
  const pending = await new ArtifactReleaseRepository(deps.orm.em.fork()).pending();
  let removed = 0;
  let stuck = 0;
  for (const digest of pending) {
    try {
      await deps.orm.em.fork().transactional(async (em) => {
        const releases = new ArtifactReleaseRepository(em);
        await releases.lockDigest(digest);
        if (!(await new ScriptVersionRepository(em).isDigestUsed(digest))) {
          if (await deps.store.delete(digest)) removed++;
        }
        await releases.forget(digest);
      });
    } catch (err) {
      // The database away: the whole pass waits for it.
      if (isDependencyUnavailable(err)) throw err;
      stuck++;
      deps.logger.warn({ err, digest }, 'an archive could not be removed; it is tried again later');
    }
  }
  if (removed > 0) deps.logger.info({ removed }, 'archives removed');
  if (stuck > 0) deps.logger.warn({ stuck }, 'archives left queued');
  return removed;
}
