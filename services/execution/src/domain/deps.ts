import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from '@gef/common';
import type { RunLauncher } from './run-launcher';
import type { RunnersOnline } from './runner-presence';
import type { OwnerNotices } from './owner-notices';
import type { ScriptCatalog } from './script-catalog';

/** Settings of the run path. */
export interface RunSettings {
  /** Concurrent runs of a USER (ADMIN+ unlimited). */
  maxConcurrent: number;
  /** Runs of a USER waiting for a slot at once; more are refused (429). Absent: no bound. */
  maxWaiting?: number;
  defaultTimeoutSeconds: number;
  heartbeatTimeoutSeconds: number;
  maxAttempts: number;
  prepareTimeoutSeconds: number;
  /** What a script may append to its run's log itself, with its API_TOKEN (default `apiLogDefaults`). */
  apiLog?: { maxLines: number; maxBytes: number };
}

/** Lines and bytes a run's script may append with its API_TOKEN, over all attempts: a runner's per-attempt limits. */
export const apiLogDefaults = { maxLines: 1_000_000, maxBytes: 256 * 1024 ** 2 };

/** What the execution service's domain code works with. */
export interface ExecutionDeps {
  orm: MikroORM;
  scripts: ScriptCatalog;
  runs: RunLauncher;
  /** Owners' e-mail opt-ins; absent: every run asks at its end. */
  owners?: OwnerNotices;
  /** EXECUTION_TOKEN_SECRET. */
  tokenSecret: string;
  settings: RunSettings;
  logger: Logger;
  /** Runners online, from their reports; absent: runs handed to them are not checked. */
  runners?: RunnersOnline;
}
