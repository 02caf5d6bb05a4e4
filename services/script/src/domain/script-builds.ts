import { FailedPrecondition, InvalidArgument, NotFound, uuidPattern } from '@gef/common';
import type { ScriptBuildOutcome, ScriptBuildPlan, ScriptBuildRef } from '@gef/workflows/activities';
import { BuildDispatchRepository } from '../repositories/build-dispatch-repository';
import { ScriptLogRepository, type BuildLineNumbering } from '../repositories/script-log-repository';
import { ScriptRepository } from '../repositories/script-repository';
import { ScriptVersionRepository } from '../repositories/script-version-repository';
import { assertBuildToken, signBuildToken } from './build-token';
import type { ScriptDeps } from './deps';

const prefix = 'Build: ';
const maxLinesPerAppend = 1000;

// A version's build lines (its start, the runner's output, its outcome) go into the
// script's log only while it is the script's current version, checked under the script's
// row lock: after `version N received` every line is about version N, and a finished
// script's last line is its current version's outcome. A replaced version still builds;
// its outcome is recorded on its version row alone.

/**
 * The buildScript workflow's first step: PENDING → BUILDING, and what to build with the
 * build token the runner appends log lines and reads the requirements with. The plan holds
 * no requirements: it is recorded in the workflow's history, and they may hold credentials.
 */
export async function startScriptBuild(deps: Pick<ScriptDeps, 'orm' | 'buildTokenSecret'>, ref: ScriptBuildRef): Promise<ScriptBuildPlan> {
  const plan = await deps.orm.em.fork().transactional(async (em): Promise<ScriptBuildPlan> => {
    const script = await new ScriptRepository(em).lockByIdOrSlug(ref.scriptId);
    if (!script) return { proceed: false, reason: 'the script was deleted' };
    const version = await new ScriptVersionRepository(em).lock(ref.scriptId, ref.version);
    if (!version) return { proceed: false, reason: 'the version was deleted' };
    if (version.status === 'SUCCESS' || version.status === 'FAIL') return { proceed: false, reason: `the build already ended ${version.status}` };
    const runtime = typeof version.configuration['runtime'] === 'string' ? version.configuration['runtime'].trim().toLowerCase() : script.runtime;
    // Started already (this step delivered again after a lost answer): the same plan, no change.
    const archive = { digest: version.digest, size: version.size, scriptUserId: script.userId };
    if (version.status === 'BUILDING') return { proceed: true, runtime, buildToken: '', archive };
    version.status = 'BUILDING';
    const current = script.version === ref.version;
    if (current) {
      script.status = 'BUILDING';
      script.updatedAt = new Date();
    }
    await em.flush();
    if (current) await new ScriptLogRepository(em).append(script.id, ref.version, [`${prefix}started for version ${ref.version} (${runtime})`]);
    return { proceed: true, runtime, buildToken: '', archive };
  });
  if (!plan.proceed) return plan;
  return { ...plan, buildToken: await signBuildToken(deps.buildTokenSecret, ref) };
}

/**
 * The buildScript workflow's last step: SUCCESS or FAIL, the reason as the last line
 * (of the current version; a replaced one's outcome stays on its version row).
 */
export async function finishScriptBuild(deps: Pick<ScriptDeps, 'orm'>, outcome: ScriptBuildOutcome): Promise<void> {
  await deps.orm.em.fork().transactional(async (em) => {
    const script = await new ScriptRepository(em).lockByIdOrSlug(outcome.scriptId);
    if (!script) return;
    const version = await new ScriptVersionRepository(em).lock(outcome.scriptId, outcome.version);
    if (!version || version.status === 'SUCCESS' || version.status === 'FAIL') return;
    const now = new Date();
    version.status = outcome.status;
    version.builtAt = now;
    if (outcome.status === 'SUCCESS' && outcome.environmentHash) version.environmentHash = outcome.environmentHash;
    const current = script.version === outcome.version;
    if (current) {
      script.status = outcome.status;
      script.updatedAt = now;
    }
    await em.flush();
    if (!current) return;
    const last =
      outcome.status === 'SUCCESS'
        ? `${prefix}SUCCESS: version ${outcome.version} is ready${outcome.environmentHash ? ` (environment ${outcome.environmentHash.slice(0, 12)})` : ''}`
        : `${prefix}FAIL: ${oneLine(outcome.reason ?? 'the build failed')}`;
    await new ScriptLogRepository(em).append(script.id, outcome.version, [last]);
  });
}

/**
 * The requirements.txt of a version while it builds, for the runner holding its build token
 * (GetBuildRequirements): the text the environment is built from, exactly as stored.
 * NotFound once the script or version is gone, FailedPrecondition once its build ended.
 */
export async function buildRequirements(deps: Pick<ScriptDeps, 'orm' | 'buildTokenSecret'>, ref: ScriptBuildRef, buildToken: string): Promise<string> {
  await assertBuildToken(deps.buildTokenSecret, buildToken, ref);
  const version = await new ScriptVersionRepository(deps.orm.em.fork()).find(ref.scriptId.toLowerCase(), ref.version);
  if (!version) throw new NotFound(`Script version ${ref.version} not found`, 'not_found');
  if (version.status !== 'BUILDING') throw new FailedPrecondition(`The build of version ${ref.version} is not running (${version.status})`, 'failed_precondition');
  return version.requirements;
}

/** The largest value of an integer column. */
const maxColumnInteger = 2_147_483_647;

/**
 * Build output from a runner holding the version's build token, while that version
 * builds and is the script's current one; otherwise dropped. Numbered lines are stored once
 * however often they are sent.
 */
export async function appendBuildLog(
  deps: Pick<ScriptDeps, 'orm' | 'buildTokenSecret'>,
  ref: ScriptBuildRef,
  buildToken: string,
  lines: string[],
  numbering?: BuildLineNumbering,
): Promise<number> {
  await assertBuildToken(deps.buildTokenSecret, buildToken, ref);
  if (numbering && (numbering.attempt < 1 || numbering.attempt > maxColumnInteger || numbering.firstSeq + lines.length > maxColumnInteger)) {
    throw new InvalidArgument('attempt and first_seq must be whole numbers from 1 that the log can number', 'invalid_argument');
  }
  if (numbering?.buildRun !== undefined && !uuidPattern.test(numbering.buildRun)) {
    throw new InvalidArgument('build_run must be the UUID of the build\'s workflow run', 'invalid_argument');
  }
  const kept = lines.slice(0, maxLinesPerAppend).map((l) => `${prefix}${oneLine(l)}`);
  return deps.orm.em.fork().transactional(async (em) => {
    const script = await new ScriptRepository(em).lockByIdOrSlug(ref.scriptId);
    if (!script || script.version !== ref.version) return 0;
    const version = await new ScriptVersionRepository(em).find(ref.scriptId, ref.version);
    if (!version || version.status !== 'BUILDING') return 0;
    return new ScriptLogRepository(em).append(ref.scriptId, ref.version, kept, numbering);
  });
}

/**
 * Queues the builds of versions still PENDING or BUILDING in the outbox again (after a
 * crash); the dispatcher starts those whose workflow does not exist. Returns how many.
 */
export async function resumeBuilds(deps: Pick<ScriptDeps, 'orm'>): Promise<number> {
  return deps.orm.em.fork().transactional((em) => new BuildDispatchRepository(em).addUnfinished());
}

function oneLine(text: string): string {
   
  return text.replace(/\r?\n|\r/g, ' ').replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '').trimEnd();
}
