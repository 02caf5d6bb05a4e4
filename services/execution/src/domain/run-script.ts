import { randomUUID } from 'node:crypto';
import { InvalidArgument, jsonDepthExceeds, maxJsonValueDepth, NotFound, ResourceExhausted, Unauthenticated } from '@gef/common';
import type { EntityManager } from '@gef/common/orm';
import type { RunExecutionInput } from '@gef/workflows';
import { DeletedUserRepository } from '../repositories/deleted-user-repository';
import { DispatchRepository } from '../repositories/dispatch-repository';
import { ExecutionRepository, type ExecutionRecord } from '../repositories/execution-repository';
import { RunSpecRepository, type RunSpecRecord } from '../repositories/run-spec-repository';
import { isAdmin, requireActor, type Actor } from './actor';
import type { ExecutionDeps } from './deps';
import { validateParams } from './params-schema';
import { grantOnAccept } from './run-slots';
import type { ScriptForRun } from './script-catalog';

/**
 * POST /script/<s>/run: a visible, built script's current version, params nested at most
 * `maxJsonValueDepth` levels and checked against its params_schema; the execution is
 * stored PENDING (pinned to the version), with its slot when one is free, together with
 * its runExecution workflow's start in the outbox
 * (execution_dispatch), atomically. A USER's run that must wait is refused (429) while
 * `maxWaiting` of theirs wait already. The dispatcher starts the workflow as soon as
 * Temporal answers, so a run accepted while Temporal is down starts when it returns. A
 * user whose deletion has begun here runs nothing more (checked by the insert itself).
 */
export async function runScript(
  deps: ExecutionDeps,
  caller: Actor | undefined,
  idOrSlug: string,
  params: Record<string, unknown>,
): Promise<ExecutionRecord> {
  const actor = requireActor(caller);
  if (jsonDepthExceeds(params, maxJsonValueDepth)) {
    throw new InvalidArgument(`params are nested deeper than ${maxJsonValueDepth} levels of objects and arrays`, 'invalid_argument');
  }
  const key = idOrSlug.trim();
  // A blank key names no script: 404, as on every other script route (CONTRACT §5).
  if (!key) throw new NotFound('Script not found', 'not_found');
  const [script, notifyOwner] = await Promise.all([deps.scripts.scriptForRun(actor, key), deps.owners?.wantsMail(actor.userId) ?? Promise.resolve(true)]);
  if (script.status !== 'SUCCESS') throw new InvalidArgument(`Script ${script.slug} is not BUILT`, 'not_built');
  validateParams(`${script.scriptId}:${script.version}`, script.paramsSchema, params, actor.userId);

  const id = randomUUID();
  const input: RunExecutionInput = {
    executionId: id,
    userId: actor.userId,
    scriptId: script.scriptId,
    ...(script.name ? { scriptName: script.name } : {}),
    concurrencyLimit: isAdmin(actor) ? null : deps.settings.maxConcurrent,
    timeoutSeconds: script.timeout > 0 ? script.timeout : deps.settings.defaultTimeoutSeconds,
    prepareTimeoutSeconds: deps.settings.prepareTimeoutSeconds,
    heartbeatTimeoutSeconds: deps.settings.heartbeatTimeoutSeconds,
    maxAttempts: deps.settings.maxAttempts,
    ...(notifyOwner ? {} : { notifyOwner: false }),
  };
  const spec = RunSpecRepository.record(runSpecOf(script));
  // The execution, its version's spec and its outbox row in one statement; the workflow
  // starts from the outbox once it commits (at once while Temporal answers).
  const accept = (em: EntityManager, slotGranted: boolean) =>
    new ExecutionRepository(em).insert(
      { id, scriptId: script.scriptId, userId: actor.userId, params, scriptVersion: script.version, slotHeld: slotGranted && input.concurrencyLimit !== null },
      [spec, DispatchRepository.add({ ...input, slotGranted })],
    );
  // Without a limit no slot is counted: one statement, atomic by itself.
  if (input.concurrencyLimit === null) return accept(deps.orm.em.fork(), true).catch(refuseDeletedOwner);
  return deps.orm.em.fork().transactional(async (em) => {
    const granted = await grantOnAccept(em, actor.userId, input.concurrencyLimit);
    // A run that must wait joins a bounded queue (under the user's slot lock, so no two
    // accepts at once both take the last place).
    const maxWaiting = deps.settings.maxWaiting;
    if (!granted && maxWaiting !== undefined && (await new ExecutionRepository(em).countWaiting(actor.userId, maxWaiting)) >= maxWaiting) {
      throw new ResourceExhausted(`At most ${maxWaiting} runs of a user may wait for a slot; try again once some have started`, 'rate_limited', { retry_after: 60 });
    }
    return accept(em, granted);
  }).catch(refuseDeletedOwner);
}

/**
 * A run of a user whose deletion has begun is refused, whoever checked their token before:
 * as the gateway refuses that user's token (401 token_revoked).
 */
function refuseDeletedOwner(err: unknown): never {
  if (DeletedUserRepository.refused(err)) throw new Unauthenticated('The user has been deleted', 'token_revoked');
  throw err;
}

/** What a run of the script's current version needs, as the run's pinned spec. */
export function runSpecOf(script: ScriptForRun): RunSpecRecord {
  return {
    scriptId: script.scriptId,
    version: script.version,
    scriptUserId: script.scriptUserId,
    digest: script.digest,
    size: script.size,
    runtime: script.runtime,
    environmentHash: script.environmentHash,
    requirements: script.requirements,
    cpuLimit: script.cpuLimit,
    memoryLimit: script.memoryLimit,
    timeout: script.timeout,
  };
}
