import os from 'node:os';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from '@gef/common';
import { invalidRequirementsFailure, type PrepareEnvironmentInput, type PreparedEnvironment } from '@gef/workflows/activities';
import { BuildLogSink } from '../build-log/build-log-sink';
import { EnvironmentError } from '../environments/environment-error';
import { ensureEnvironment, type EnvironmentSettings } from '../environments/ensure-environment';

export interface PrepareEnvironmentDeps {
  environments: EnvironmentSettings;
  /** Sends build log lines to the script service (AppendBuildLog, with the version's build token). */
  appendBuildLog: (ref: { scriptId: string; version: number; buildToken: string }, lines: string[]) => Promise<void>;
  logger: Logger;
  heartbeatIntervalMs?: number;
}

/**
 * The runner's part of a build: the version's environment, made or reused, with every step
 * and pip's output sent to the build log while it runs and a heartbeat every few seconds,
 * so a runner that dies is noticed and the build retried.
 */
export function prepareEnvironmentActivity(deps: PrepareEnvironmentDeps) {
  return async function prepareEnvironment(input: PrepareEnvironmentInput): Promise<PreparedEnvironment> {
    const ctx = Context.current();
    const ref = { scriptId: input.scriptId, version: input.version, buildToken: input.buildToken ?? '' };
    const sink = new BuildLogSink((lines) => deps.appendBuildLog(ref, lines), deps.logger);
    const hostname = os.hostname();
    ctx.heartbeat();
    const heartbeat = setInterval(() => ctx.heartbeat(), deps.heartbeatIntervalMs ?? 3000);
    const attempt = ctx.info.attempt > 1 ? `, attempt ${ctx.info.attempt}` : '';
    sink.line(`preparing the ${input.runtime} environment on runner ${hostname}${attempt}`);
    try {
      const env = await ensureEnvironment(deps.environments, input.runtime, input.requirements, {
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
      sink.line(`this attempt failed: ${err instanceof Error ? err.message : String(err)}`);
      throw err;
    } finally {
      clearInterval(heartbeat);
      await sink.close();
    }
  };
}
