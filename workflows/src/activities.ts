/**
 * The activity interfaces workflows call. Implementations live in the services that own
 * the state they change; workflows import these as types only.
 */

/** Hosted by the user service's worker (task queue `gef-user`). */
export interface UserActivities {
  /** Removes the user from Keycloak and revokes their tokens. Succeeds when the user is already gone. */
  deleteKeycloakUser(userId: string): Promise<{ deleted: boolean }>;
  /** Removes the user's profile row. Succeeds when it is already gone. */
  deleteUserProfile(userId: string): Promise<{ deleted: boolean }>;
  /**
   * Mails the owner of a run that reached a terminal status, if they opted in. Idempotent:
   * one mail per execution however often it is retried; `sent` is false when this call
   * sent nothing (not opted in, unknown user, already sent).
   */
  notifyExecutionFinished(notice: ExecutionFinishedNotice): Promise<{ sent: boolean }>;
  /**
   * Mails a user a new single-use link to set or reset their password. Idempotent per
   * `requestId`: once a link was mailed for it, a retry sends nothing (`sent` false); an
   * unknown user is not mailed either.
   */
  sendPasswordLink(request: PasswordLinkRequest): Promise<{ sent: boolean }>;
}

/** A password link whose e-mail could not be sent at once, handed to Temporal to retry. */
export interface PasswordLinkRequest {
  userId: string;
  purpose: 'set' | 'reset';
  /** Names this request (the workflow's id): one e-mail per request. */
  requestId: string;
}

/** A run that reached a terminal status, as its owner's e-mail tells it. */
export interface ExecutionFinishedNotice {
  userId: string;
  executionId: string;
  scriptId: string;
  /** The script's name when known. */
  scriptName?: string;
  status: 'FINISHED' | 'FAILED' | 'CANCELLED';
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
  /**
   * buildToken: the runner's credential for AppendBuildLog and GetBuildRequirements (this
   * version's build only). archive: the version's archive, whose script the runner checks
   * (absent in plans made before builds checked scripts). No requirements: they may hold a
   * package index's credentials, and workflow histories are readable by operators; the
   * runner reads them from the script service with the build token.
   */
  | { proceed: true; runtime: string; buildToken: string; archive?: BuildArchive }
  | { proceed: false; reason: string };

/** A version's archive as a runner fetches it: by digest, downloaded as the script's owner. */
export interface BuildArchive {
  /** SHA-256, lower-case hex. */
  digest: string;
  size: number;
  scriptUserId: string;
}

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
   * ApplicationFailure type `InvalidRequirements`, a script that does not compile with
   * `InvalidScript`.
   */
  prepareEnvironment(input: PrepareEnvironmentInput): Promise<PreparedEnvironment>;
}

export interface PrepareEnvironmentInput extends ScriptBuildRef {
  runtime: string;
  /**
   * requirements.txt as uploaded, in inputs of builds scheduled before runners read them
   * with GetBuildRequirements; never sent now (they may hold credentials).
   */
  requirements?: string;
  /**
   * The version's build token (from startScriptBuild), sent with every AppendBuildLog and
   * with GetBuildRequirements.
   */
  buildToken?: string;
  /** The version's archive: its `src/main.py` must compile. Absent: not checked. */
  archive?: BuildArchive;
}

/** The ApplicationFailure type of a build whose script cannot run (e.g. src/main.py does not compile). */
export const invalidScriptFailure = 'InvalidScript';

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

/**
 * The run path's state changes, hosted by the execution service's worker (task queue
 * `gef-execution`, where `runExecution` runs; called as local activities).
 */
export interface ExecutionRunActivities {
  /**
   * Takes one of the user's concurrency slots when it is the run's turn (oldest waiting run
   * first), marking it READY; otherwise records `queued_at` and answers `waiting`. `ended`
   * when the run is gone, terminal or being cancelled. Idempotent.
   */
  claimExecutionSlot(input: ClaimSlotInput): Promise<ClaimSlotResult>;
  /**
   * Gives the run's slot back (if it held one) and names the oldest waiting runs of the
   * user that now fit, to be woken. Idempotent.
   */
  releaseExecutionSlot(input: ReleaseSlotInput): Promise<ReleaseSlotResult>;
  /**
   * Ends a run the runner could not end: FAILED with the reason as a log line, or CANCELLED
   * (always CANCELLED while CANCELLING). A terminal status is never overwritten.
   */
  endExecution(input: EndExecutionInput): Promise<EndExecutionResult>;
}

export interface ClaimSlotInput {
  executionId: string;
  userId: string;
  /** The user's concurrency limit; null when unlimited (ADMIN and SUPERADMIN). */
  limit: number | null;
}

export type ClaimSlotResult = { outcome: 'granted' } | { outcome: 'waiting' } | { outcome: 'ended'; status: string };

export interface ReleaseSlotInput {
  executionId: string;
  userId: string;
  limit: number;
}

export interface ReleaseSlotResult {
  /** Executions whose workflows should try for a slot again. */
  wake: string[];
}

export interface EndExecutionInput {
  executionId: string;
  status: 'FAILED' | 'CANCELLED';
  /** The log line saying why. */
  reason: string;
}

export interface EndExecutionResult {
  /** The status afterwards; `GONE` when the execution no longer exists. */
  status: string;
}

/** The run path on the runners (task queue `gef-runner`). */
export interface RunnerRunActivities {
  /**
   * Runs an execution's script on this runner: takes the attempt (RUNNING), prepares the
   * environment and the archive, runs the script in the sandbox with the wall-clock
   * timeout, streams its log and progress (heartbeats carry the progress) and records the
   * outcome with the results. Params, logs and results travel over RPC, never through
   * Temporal. A cancellation stops the process (signal, grace period, kill) and then throws.
   */
  runScript(input: RunScriptInput): Promise<RunScriptResult>;
}

export interface RunScriptInput {
  executionId: string;
}

export interface RunScriptResult {
  /**
   * What happened on the runner: the script ended FINISHED or FAILED (a timeout is FAILED),
   * the run was CANCELLED, STOPPED because its status was set from outside, or SKIPPED
   * because it had ended, was cancelled or superseded before this attempt began.
   */
  outcome: 'FINISHED' | 'FAILED' | 'CANCELLED' | 'STOPPED' | 'SKIPPED';
  /** The execution's status afterwards (a status set from outside wins). */
  status: string;
}

/** What the progress heartbeats of `runScript` carry. */
export interface RunScriptHeartbeat {
  progress: number;
}
