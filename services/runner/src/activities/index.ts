import os from 'node:os';
import type { RunnerActivities, RunnerRunActivities } from '@gef/workflows/activities';
import { pythonVersion } from '../runtimes/python/probe';
import { hasTool } from '../sandbox/tools';
import { prepareEnvironmentActivity, type PrepareEnvironmentDeps } from './prepare-environment';
import { runScriptActivity, type RunScriptDeps } from './run-script';

/** The runner's activities, on the `gef-runner` task queue: builds' environments and runs. */
export function createRunnerActivities(
  options: { python: string } & PrepareEnvironmentDeps & { run?: RunScriptDeps },
): RunnerActivities & Partial<RunnerRunActivities> {
  return {
    async describeRunner() {
      const [python, setpriv, prlimit] = await Promise.all([
        pythonVersion(options.python),
        hasTool('setpriv'),
        hasTool('prlimit'),
      ]);
      return {
        hostname: os.hostname(),
        runtimes: python ? [{ name: 'python3', version: python }] : [],
        sandbox: { setpriv, prlimit },
      };
    },
    prepareEnvironment: prepareEnvironmentActivity(options),
    ...(options.run ? { runScript: runScriptActivity(options.run) } : {}),
  };
}
