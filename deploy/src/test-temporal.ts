import os from 'node:os';
import path from 'node:path';
import { findOnPath, isExecutableFile, temporalCachePath } from './prerequisites';

/**
 * The Temporal CLI tests start their own dev servers with (TestWorkflowEnvironment's
 * `existing-path`, never a download), found as the launcher finds it (DESIGN §3):
 * TEMPORAL_CLI, then `temporal` on PATH, then the launcher's cache (`npm start` and
 * `.ci/run` build it there).
 */
export function testTemporalCli(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env['TEMPORAL_CLI'];
  if (explicit) {
    if (!isExecutableFile(explicit)) throw new Error(`TEMPORAL_CLI=${explicit} is not an executable file`);
    return explicit;
  }
  const onPath = findOnPath('temporal', env);
  if (onPath) return onPath;
  const cached = temporalCachePath(env['GEF_CACHE_DIR'] || path.join(os.homedir(), '.cache', 'gef'));
  if (isExecutableFile(cached)) return cached;
  throw new Error(`No Temporal CLI (no TEMPORAL_CLI, no temporal on PATH, none at ${cached}): run npm start once or set TEMPORAL_CLI`);
}
