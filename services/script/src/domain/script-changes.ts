import { deleteInChunks, InvalidArgument, lineBreakingText, NotFound, rowsPerDelete } from '@gef/common';
import type { EntityManager } from '@gef/common/orm';
import type { Script } from '../entities/script';
import { ArtifactReleaseRepository } from '../repositories/artifact-release-repository';
import { DeletedUserRepository } from '../repositories/deleted-user-repository';
import { ScriptLogRepository } from '../repositories/script-log-repository';
import { ScriptRepository } from '../repositories/script-repository';
import { ScriptVersionRepository } from '../repositories/script-version-repository';
import { releaseArtifacts } from './artifact-release';
import type { ScriptDeps } from './deps';
import { assertMayChange, requireActor, type Actor } from './policy';
import { findVisible } from './script-reads';

/** Runs a change on a visible script the actor may change, with its row locked. */
async function changeScript<T>(
  deps: ScriptDeps,
  caller: Actor | undefined,
  idOrSlug: string,
  change: (script: Script, em: EntityManager) => Promise<T>,
): Promise<T> {
  const actor = requireActor(caller);
  return deps.orm.em.fork().transactional(async (em) => {
    const repo = new ScriptRepository(em);
    const visible = await findVisible(repo, actor, idOrSlug);
    assertMayChange(actor, visible);
    // Deleted since it was read: an update of no row would pass for a change.
    const script = await repo.lockByIdOrSlug(visible.id);
    if (!script) throw new NotFound('Script not found', 'not_found');
    return change(script, em);
  });
}

const maxNameLength = 1000;
const maxDescriptionLength = 100_000;

/** PATCH /script/<s> with JSON: name and/or description only. */
export async function updateScriptMetadata(
  deps: ScriptDeps,
  caller: Actor | undefined,
  idOrSlug: string,
  changes: { name?: string; description?: string },
): Promise<Script> {
  const name = changes.name?.trim();
  if (changes.name !== undefined && (!name || name.length > maxNameLength)) {
    throw new InvalidArgument(`name must be 1 to ${maxNameLength} characters`, 'invalid_argument');
  }
  if (name && lineBreakingText.test(name)) throw new InvalidArgument('name must not hold control characters or line breaks', 'invalid_argument');
  if (changes.description !== undefined && changes.description.length > maxDescriptionLength) {
    throw new InvalidArgument(`description is longer than ${maxDescriptionLength} characters`, 'invalid_argument');
  }
  if (name === undefined && changes.description === undefined) throw new InvalidArgument('Not updated', 'not_updated');
  return changeScript(deps, caller, idOrSlug, async (script, em) => {
    if (name !== undefined) script.name = name;
    if (changes.description !== undefined) script.description = changes.description;
    script.updatedAt = new Date();
    await em.flush();
    return script;
  });
}

/** POST /script/<s>/publish and /unpublish. */
export async function setScriptPublic(deps: ScriptDeps, caller: Actor | undefined, idOrSlug: string, isPublic: boolean): Promise<Script> {
  return changeScript(deps, caller, idOrSlug, async (script, em) => {
    if (script.public !== isPublic) {
      script.public = isPublic;
      script.updatedAt = new Date();
      await em.flush();
    }
    return script;
  });
}

/**
 * Build log lines of scripts about to be deleted, `rowsPerDelete` a statement: a script's
 * versions may hold millions, which the cascade would delete in one statement. Lines
 * written meanwhile go with the script, by cascade.
 */
function deleteBuildLogs(deps: ScriptDeps, scriptIds: string[], linesPerDelete: number, onChunk?: () => void): Promise<number> {
  return deleteInChunks(() => new ScriptLogRepository(deps.orm.em.fork()).deleteSomeOf(scriptIds, linesPerDelete), onChunk);
}

/**
 * DELETE /script/<s>: once the actor may, its build logs go in chunks
 * (`deleteBuildLogs`), then the script, its versions and what is left in one transaction;
 * its archives are queued for release there and removed once no version uses them.
 * Executions (another service) are kept.
 */
export async function deleteScript(deps: ScriptDeps, caller: Actor | undefined, idOrSlug: string, linesPerDelete = rowsPerDelete): Promise<Script> {
  const actor = requireActor(caller);
  const visible = await findVisible(new ScriptRepository(deps.orm.em.fork()), actor, idOrSlug);
  assertMayChange(actor, visible);
  await deleteBuildLogs(deps, [visible.id], linesPerDelete);
  const deleted = await changeScript(deps, caller, visible.id, async (script, em) => {
    const snapshot = { ...script };
    const digests = await new ScriptVersionRepository(em).digestsOf([script.id]);
    await new ArtifactReleaseRepository(em).queue(digests);
    await new ScriptRepository(em).deleteByIds([script.id]);
    return snapshot;
  });
  await releaseArtifacts(deps).catch((err: unknown) => deps.logger.warn({ err }, 'archive release deferred'));
  return deleted;
}

/**
 * The deleteUser workflow's step: every script of a user, like deleteScript. The user is
 * recorded as deleted first (an upload of theirs being stored is waited for, later ones
 * are refused), their build logs go in chunks, and the scripts' rows are locked before
 * their versions are read (a new version being added is waited for, so its archive is
 * released too). `onChunk` is called after each statement of the logs (the activity's
 * heartbeat).
 */
export async function deleteScriptsOfUser(deps: ScriptDeps, userId: string, onChunk?: () => void, linesPerDelete = rowsPerDelete): Promise<number> {
  await deps.orm.em.fork().transactional((em) => new DeletedUserRepository(em).record(userId));
  await deleteBuildLogs(deps, await new ScriptRepository(deps.orm.em.fork()).idsOfUser(userId), linesPerDelete, onChunk);
  const count = await deps.orm.em.fork().transactional(async (em) => {
    await new DeletedUserRepository(em).record(userId);
    const repo = new ScriptRepository(em);
    const ids = await repo.lockIdsOfUser(userId);
    await new ArtifactReleaseRepository(em).queue(await new ScriptVersionRepository(em).digestsOf(ids));
    return repo.deleteByIds(ids);
  });
  onChunk?.();
  // Also finishes releases a crashed earlier attempt left queued.
  await releaseArtifacts(deps);
  return count;
}
