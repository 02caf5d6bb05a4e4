import type { RunnerConfig } from '../config';
import type { EnvironmentSettings } from './ensure-environment';

/** Environment settings from the runner's configuration. */
export function environmentSettings(config: RunnerConfig): EnvironmentSettings {
  return {
    dataDir: config.GEF_DATA_DIR,
    python: config.PYTHON,
    processEnv: config.toolEnv,
    pipTimeoutMs: config.PIP_TIMEOUT_SECONDS * 1000,
  };
}
