/**
 * The activity interfaces workflows call. Implementations live in the services that own
 * the state they change; workflows import these as types only.
 */

/** Hosted by the user service's worker (task queue `gef-user`). */
export interface UserActivities {
  /** Removes the user from Keycloak. Succeeds when the user is already gone. */
  deleteKeycloakUser(userId: string): Promise<{ deleted: boolean }>;
  /** Removes the user's profile row. Succeeds when it is already gone. */
  deleteUserProfile(userId: string): Promise<{ deleted: boolean }>;
}

/** Hosted by the script service's worker (task queue `gef-script`). */
export interface ScriptActivities {
  /** Removes every script of the user with its versions, archives and logs. */
  deleteScriptsOfUser(userId: string): Promise<{ scripts: number }>;
  /**
   * Marks a version BUILDING (and its script, while it is the current version) with a log
   * line, and says what to build. `proceed: false` when the script or version is gone or
   * its build already ended.
   */
  startScriptBuild(ref: ScriptBuildRef): Promise<ScriptBuildPlan>;
  /**
   * Records the outcome: the version's (and current script's) status, the environment
   * hash on SUCCESS, and a last log line (on FAIL, the reason). Idempotent.
   */
  finishScriptBuild(outcome: ScriptBuildOutcome): Promise<void>;
}

/** A version of a script being built. */
export interface ScriptBuildRef {
  scriptId: string;
  version: number;
}

export type ScriptBuildPlan =
  | { proceed: true; runtime: string; requirements: string }
  | { proceed: false; reason: string };

export interface ScriptBuildOutcome extends ScriptBuildRef {
  status: 'SUCCESS' | 'FAIL';
  /** On SUCCESS. */
  environmentHash?: string;
  /** On FAIL: why, written as the last build log line. */
  reason?: string;
}

/** Hosted by the execution service's worker (task queue `gef-execution`). */
export interface ExecutionActivities {
  /** Removes every execution the user made, with its logs. */
  deleteExecutionsOfUser(userId: string): Promise<{ executions: number }>;
}

/** Hosted by each runner (task queue `gef-runner`). */
export interface RunnerActivities {
  /** Reports what this runner can run: runtimes and sandbox tools. */
  describeRunner(): Promise<RunnerDescription>;
  /**
   * Makes sure the runtime environment of a version exists on this runner (reusing a
   * cached one with the same hash), streaming its output to the build log. Heartbeats
   * while it works. A requirement that cannot be installed fails with the non-retryable
   * ApplicationFailure type `InvalidRequirements`.
   */
  prepareEnvironment(input: PrepareEnvironmentInput): Promise<PreparedEnvironment>;
}

export interface PrepareEnvironmentInput extends ScriptBuildRef {
  runtime: string;
  /** requirements.txt as uploaded. */
  requirements: string;
}

export interface PreparedEnvironment {
  /** sha256 of runtime + normalised requirements. */
  environmentHash: string;
  /** Whether an existing environment was used as it was. */
  reused: boolean;
  hostname: string;
}

/** The ApplicationFailure type of a build that cannot succeed by retrying. */
export const invalidRequirementsFailure = 'InvalidRequirements';

export interface RunnerDescription {
  hostname: string;
  runtimes: { name: string; version: string }[];
  sandbox: { setpriv: boolean; prlimit: boolean };
}
