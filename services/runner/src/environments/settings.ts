import type { RunnerConfig } from '../config';
import type { EnvironmentSettings } from './ensure-environment';

/** Environment settings from the runner's configuration; environments live under `root`. */
export function environmentSettings(config: RunnerConfig, root: string = config.GEF_DATA_DIR): EnvironmentSettings {
  return {
    dataDir: root,
    python: config.PYTHON,
    processEnv: config.toolEnv,
    pipTimeoutMs: config.PIP_TIMEOUT_SECONDS * 1000,
  };
}
