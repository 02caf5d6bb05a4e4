import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from '@gef/common';
import {
  invalidRequirementsFailure,
  invalidScriptFailure,
  type BuildArchive,
  type PrepareEnvironmentInput,
  type PreparedEnvironment,
} from '@gef/workflows/activities';
import { ownerMessage } from './owner-safe-failures';
import type { ArchiveCache } from '../archives/archive-cache';
import type { ExtractedArchives } from '../archives/extracted-archives';
import { ArchiveGone } from '../archives/script-service-source';
import { BuildLogSink } from '../build-log/build-log-sink';
import { BuildRequirementsRefused, type BuildRequirements, type BuildRequirementsRef } from '../environments/build-requirements';
import { EnvironmentError } from '../environments/environment-error';
import { ensureEnvironment, type EnvironmentSettings } from '../environments/ensure-environment';
import { checkPythonSyntax } from '../runtimes/python/check-syntax';
import type { SandboxLimits } from '../sandbox/sandbox';
import { attemptLostSignal } from './attempt-lost';

/** The script a build checks: its entry point must compile. */
const entryPoint = 'src/main.py';
/** A larger entry point is not checked (an upload's limits keep it far smaller). */
const maxCheckedBytes = 16 * 1024 * 1024;
/** The ApplicationFailure type of a build the script service no longer lets run (its build token refused, the build ended). */
const buildRefusedFailure = 'BuildRefused';

/** Where a build finds its version's archive (the runs' caches: a run of it finds it extracted). */
export interface BuildArchives {
  archives: ArchiveCache;
  extracted: ExtractedArchives;
  /** The limits of the extraction (as a run's). */
  limits: SandboxLimits;
}

export interface PrepareEnvironmentDeps {
  environments: EnvironmentSettings;
  /**
   * Sends build log lines to the script service (AppendBuildLog, with the version's build
   * token); `signal`: the call is abandoned when it aborts (the build's attempt was lost).
   */
  /** Lines numbered from `firstSeq` within the build's `attempt` of its workflow run `buildRun`: sent again, stored once. */
  appendBuildLog: (ref: { scriptId: string; version: number; buildToken: string; attempt: number; buildRun: string }, lines: string[], firstSeq: number, signal?: AbortSignal) => Promise<void>;
  /**
   * The version's requirements.txt from the script service (GetBuildRequirements, with the
   * build token): they never travel in the activity's input, which Temporal keeps in the
   * workflow's history.
   */
  buildRequirements: BuildRequirements;
  logger: Logger;
  heartbeatIntervalMs?: number;
  /** With them, a build whose plan names its archive checks that `src/main.py` compiles. */
  scripts?: BuildArchives;
}

/**
 * The entry point's source from an extracted tree: a regular file inside the tree, not
 * through a link; undefined when there is none, or it is too large to check.
 */
async function entryPointSource(tree: string): Promise<Uint8Array | undefined> {
  const root = await fs.realpath(tree);
  const real = await fs.realpath(path.join(root, entryPoint)).catch(() => undefined);
  if (!real || !real.startsWith(root + path.sep)) return undefined;
  const handle = await fs.open(real, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    const stat = await handle.stat();
    if (!stat.isFile() || stat.size > maxCheckedBytes) return undefined;
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/**
 * Checks that the version's `src/main.py` compiles (as a build's sandbox user when builds
 * are isolated). A syntax error fails the build for good, with Python's own lines in the
 * build log; trouble fetching the archive is this runner's, and retried.
 */
async function checkEntryPoint(
  deps: PrepareEnvironmentDeps & { scripts: BuildArchives },
  input: PrepareEnvironmentInput & { archive: BuildArchive },
  sink: BuildLogSink,
  signal: AbortSignal,
): Promise<void> {
  const { archives, extracted, limits } = deps.scripts;
  const ref = { scriptId: input.scriptId, version: input.version, ...input.archive, digest: input.archive.digest.trim().toLowerCase() };
  let source: Uint8Array | undefined;
  try {
    const tree = await extracted.acquire(ref.digest, limits, () => archives.acquire(ref));
    try {
      source = await entryPointSource(tree.path);
    } finally {
      tree.release();
    }
  } catch (err) {
    if (err instanceof ArchiveGone) throw ApplicationFailure.nonRetryable('the script was deleted during its build', invalidScriptFailure);
    throw err;
  }
  if (!source) {
    sink.line(`${entryPoint} was not checked (not a regular file of the archive, or too large)`);
    return;
  }
  const builds = deps.environments.builds;
  const place = builds?.sandbox.isolated ? await builds.sandbox.open(`check-${input.scriptId.slice(0, 8)}-v${input.version}`) : undefined;
  try {
    const check = await checkPythonSyntax(source, entryPoint, {
      python: deps.environments.python,
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', ...(place ? { HOME: place.dir } : {}) },
      ...(place && builds ? { wrap: (command: string, args: string[]) => place.wrap(command, args, { ...builds.limits, cpuSeconds: 60 }) } : {}),
      signal,
    });
    if (check.ok) {
      sink.line(check.unchecked ? `${entryPoint} was not checked (${check.unchecked}: a codec its environment may provide)` : `${entryPoint} compiles`);
      return;
    }
    if (!check.invalid) throw new Error(check.reason);
    for (const line of check.lines) sink.output(line);
    const last = check.lines.at(-1) ?? 'SyntaxError';
    throw ApplicationFailure.nonRetryable(`${entryPoint} does not compile: ${last}`, invalidScriptFailure);
  } finally {
    await place?.close();
  }
}

/**
 * The version's requirements: those an input scheduled before runners read them carries,
 * else the script service's. A script or build that is gone, or a build token refused,
 * fails the build for good; trouble reaching the service is retried.
 */
async function requirementsOf(deps: PrepareEnvironmentDeps, input: PrepareEnvironmentInput, ref: BuildRequirementsRef, signal: AbortSignal): Promise<string> {
  if (input.requirements !== undefined) return input.requirements;
  try {
    return await deps.buildRequirements(ref, signal);
  } catch (err) {
    if (err instanceof BuildRequirementsRefused) throw ApplicationFailure.nonRetryable(err.message, err.gone ? invalidScriptFailure : buildRefusedFailure);
    throw err;
  }
}

/**
 * The runner's part of a build: the version's environment, made or reused, with every step
 * and pip's output sent to the build log while it runs and a heartbeat every few seconds,
 * so a runner that dies is noticed and the build retried.
 */
export function prepareEnvironmentActivity(deps: PrepareEnvironmentDeps) {
  return async function prepareEnvironment(input: PrepareEnvironmentInput): Promise<PreparedEnvironment> {
    const ctx = Context.current();
    // Numbered by the workflow run too: a build started again under a new run counts its attempts from 1 again.
    const ref = { scriptId: input.scriptId, version: input.version, buildToken: input.buildToken ?? '', attempt: ctx.info.attempt, buildRun: ctx.info.workflowExecution.runId };
    // A build whose attempt is lost (timed out, its worker stopping) stops sending its log.
    const lost = attemptLostSignal(ctx);
    const sink = new BuildLogSink((lines, firstSeq) => deps.appendBuildLog(ref, lines, firstSeq, lost), deps.logger);
    const hostname = os.hostname();
    ctx.heartbeat();
    const heartbeat = setInterval(() => ctx.heartbeat(), deps.heartbeatIntervalMs ?? 3000);
    const attempt = ctx.info.attempt > 1 ? `, attempt ${ctx.info.attempt}` : '';
    try {
      if (deps.scripts && input.archive && input.runtime === 'python3') {
        sink.line(`checking ${entryPoint} on runner ${hostname}${attempt}`);
        await checkEntryPoint({ ...deps, scripts: deps.scripts }, { ...input, archive: input.archive }, sink, ctx.cancellationSignal);
      }
      const requirements = await requirementsOf(deps, input, { scriptId: ref.scriptId, version: ref.version, buildToken: ref.buildToken }, ctx.cancellationSignal);
      sink.line(`preparing the ${input.runtime} environment on runner ${hostname}${attempt}`);
      const env = await ensureEnvironment(deps.environments, input.runtime, requirements, {
        onLine: (line) => sink.output(line),
        signal: ctx.cancellationSignal,
      });
      // Nothing of the build uses it: the cache may remove it (a run builds it again).
      env.release();
      sink.line(env.reused ? `environment ${env.hash.slice(0, 12)} reused` : `environment ${env.hash.slice(0, 12)} ready`);
      return { environmentHash: env.hash, reused: env.reused, hostname };
    } catch (err) {
      if (err instanceof EnvironmentError && !err.retryable) {
        throw ApplicationFailure.nonRetryable(err.message, invalidRequirementsFailure);
      }
      if (err instanceof ApplicationFailure && err.nonRetryable) throw err;
      sink.line(`this attempt failed: ${ownerMessage(err)}`);
      throw err;
    } finally {
      // Heartbeats go on until the last lines are delivered: the script service may be away
      // for a while (each call waits for it), longer than the heartbeat timeout.
      try {
        await sink.close();
      } finally {
        clearInterval(heartbeat);
      }
    }
  };
}
