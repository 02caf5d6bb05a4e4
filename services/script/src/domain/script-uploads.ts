import { randomUUID } from 'node:crypto';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { InvalidArgument, NotFound, Unauthenticated } from '@gef/common';
import { receiveArchive } from '../archive/receive-archive';
import type { ArchiveContents } from '../archive/inspect-archive';
import type { StagedArtifact } from '../artifacts/artifact-store';
import type { Script } from '../entities/script';
import type { EntityManager } from '@gef/common/orm';
import { ArtifactReleaseRepository } from '../repositories/artifact-release-repository';
import { BuildDispatchRepository } from '../repositories/build-dispatch-repository';
import { DeletedUserRepository } from '../repositories/deleted-user-repository';
import { ScriptLogRepository } from '../repositories/script-log-repository';
import { ScriptRepository } from '../repositories/script-repository';
import { ScriptVersionRepository } from '../repositories/script-version-repository';
import type { ScriptDeps } from './deps';
import { assertMayChange, canSee, requireActor, type Actor } from './policy';
import { unstorableText, unstorableWhat } from '@gef/common';

export interface Upload {
  /** The multipart part's file name. */
  fileName: string;
  chunks: AsyncIterable<Uint8Array>;
}

const maxFileNameLength = 1000;

/** `<anything>.tar.gz` (spaces and extra dots allowed, text a column can hold), without any directory part. */
export function checkFileName(raw: string): string {
  const name = raw.split(/[\\/]/).pop()!.trim();
  if (!/\.tar\.gz$/i.test(name) || name.length <= '.tar.gz'.length) {
    throw new InvalidArgument('The file must be a gzip-compressed tar archive named *.tar.gz', 'invalid_archive');
  }
  if (name.length > maxFileNameLength) throw new InvalidArgument('The file name is too long', 'invalid_archive');
  // Multipart lets `filename*=UTF-8''a%00.tar.gz` through; the name is stored and logged.
  if (unstorableText.test(name)) throw new InvalidArgument(`The file name holds ${unstorableWhat}`, 'invalid_archive');
  return name;
}

function slugTaken(slug: string): InvalidArgument {
  return new InvalidArgument(`A script with the slug '${slug}' already exists`, 'slug_taken');
}

/** The script fields that come from a version's configuration.json. */
function fromConfiguration(contents: ArchiveContents) {
  const c = contents.configuration;
  return {
    name: c.name,
    description: c.description,
    runtime: c.runtime,
    cpuLimit: c.cpuLimit,
    memoryLimit: c.memoryLimit,
    timeout: c.timeout,
    paramsSchema: c.paramsSchema,
  };
}

/** Records a version, publishes its archive under the digest lock and logs its arrival. */
async function recordVersion(em: EntityManager, script: Script, number: number, staged: StagedArtifact, contents: ArchiveContents, fileName: string) {
  new ScriptVersionRepository(em).create({
    scriptId: script.id,
    number,
    digest: staged.digest,
    size: staged.size,
    configuration: contents.configuration.raw,
    fileName,
    requirements: contents.requirements,
  });
  await em.flush();
  await new ScriptLogRepository(em).append(script.id, number, [
    `Build: version ${number} received: ${fileName}, ${staged.size} bytes, ${contents.members} members, sha256 ${staged.digest}`,
  ]);
  const releases = new ArtifactReleaseRepository(em);
  await releases.lockDigest(staged.digest);
  await releases.forget(staged.digest);
  // The build workflow starts from the outbox once this commits (at once while Temporal answers).
  await new BuildDispatchRepository(em).add({ scriptId: script.id, version: number });
  await staged.commit();
}

/**
 * Seconds a version has to commit once its archive is received; after them, an archive no
 * version records (its transaction failed at the commit, or its process died) is removed.
 */
export const strandedArchiveGraceSeconds = 600;

/**
 * Receives and checks an upload's archive, staged, and queues it for release in case the
 * version that publishes it never commits (`queueUnlessRecorded`).
 */
async function receiveUpload(deps: ScriptDeps, upload: Upload) {
  const received = await receiveArchive(upload.chunks, deps.store, deps.limits);
  try {
    await new ArtifactReleaseRepository(deps.orm.em.fork()).queueUnlessRecorded(received.staged.digest, strandedArchiveGraceSeconds);
  } catch (err) {
    await received.staged.discard();
    throw err;
  }
  return received;
}

/**
 * POST /script: checks and stores the archive as it streams, records the script and its
 * first version and its build's start (the outbox) in one transaction. Nothing is left
 * behind when anything fails. A user whose deletion has begun here stores nothing more
 * (as the gateway refuses their token: 401 token_revoked).
 */
export async function createScript(deps: ScriptDeps, caller: Actor | undefined, upload: Upload): Promise<Script> {
  const actor = requireActor(caller);
  const fileName = checkFileName(upload.fileName);
  const { staged, contents } = await receiveUpload(deps, upload);
  let script: Script;
  try {
    script = await deps.orm.em.fork().transactional(async (em) => {
      if (await new DeletedUserRepository(em).isDeleted(actor.userId)) throw new Unauthenticated('The user has been deleted', 'token_revoked');
      const scripts = new ScriptRepository(em);
      const slug = contents.configuration.slug;
      if (await scripts.slugTaken(slug)) throw slugTaken(slug);
      const created = scripts.create({
        id: randomUUID(),
        slug,
        status: 'PENDING',
        public: false,
        userId: actor.userId,
        version: 1,
        ...fromConfiguration(contents),
      });
      await em.flush();
      await recordVersion(em, created, 1, staged, contents, fileName);
      return created;
    });
  } catch (err) {
    await staged.discard();
    if (err instanceof UniqueConstraintViolationException) throw slugTaken(contents.configuration.slug);
    throw err;
  }
  return script;
}

/**
 * PATCH /script/<s> with a file: a new version. The slug never changes; the other fields
 * follow the new configuration.json; the build starts again.
 */
export async function addScriptVersion(deps: ScriptDeps, caller: Actor | undefined, idOrSlug: string, upload: Upload): Promise<Script> {
  const actor = requireActor(caller);
  const fileName = checkFileName(upload.fileName);
  // Check visibility and ownership before taking the bytes.
  const before = await new ScriptRepository(deps.orm.em.fork()).findByIdOrSlug(idOrSlug.trim());
  if (!before || !canSee(actor, before)) throw new NotFound('Script not found', 'not_found');
  assertMayChange(actor, before);

  const { staged, contents } = await receiveUpload(deps, upload);
  let result: { script: Script; version: number };
  try {
    result = await deps.orm.em.fork().transactional(async (em) => {
      const script = await new ScriptRepository(em).lockByIdOrSlug(before.id);
      if (!script) throw new NotFound('Script not found', 'not_found');
      const version = (await new ScriptVersionRepository(em).latestNumber(script.id)) + 1;
      Object.assign(script, fromConfiguration(contents), { version, status: 'PENDING', updatedAt: new Date() });
      await em.flush();
      await recordVersion(em, script, version, staged, contents, fileName);
      return { script, version };
    });
  } catch (err) {
    await staged.discard();
    throw err;
  }
  return result.script;
}
