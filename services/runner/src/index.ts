// What other code may use of the runner: the environment cache the run path shares.
export { ensureEnvironment, sweepUnfinishedEnvironments, type Environment, type EnvironmentHooks, type EnvironmentSettings } from './environments/ensure-environment';
export { EnvironmentError } from './environments/environment-error';
export { environmentHash } from './environments/environment-hash';
export { normaliseRequirements } from './environments/requirements';
