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
}

export interface RunnerDescription {
  hostname: string;
  runtimes: { name: string; version: string }[];
  sandbox: { setpriv: boolean; prlimit: boolean };
}
