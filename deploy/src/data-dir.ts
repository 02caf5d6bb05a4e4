import { chmodSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { StackConfig } from './config';

/**
 * Entries of the data directory that other users must reach: PostgreSQL's data (it runs as
 * the unprivileged `postgres` user and keeps its directory 0700 itself) and the runner's
 * directory (sandboxed scripts run as other users and need their environment and working
 * directory; the runner sets the modes inside it).
 */
export const SHARED_DATA_ENTRIES: readonly string[] = ['postgres', 'runner'];

/** Directories the parts write into, created private before any part starts. */
export const PRIVATE_DATA_DIRS: readonly string[] = ['temporal', 'keycloak', 'maildev', 'artifacts'];

const privateDir = 0o700;
const privateFile = 0o600;

/** Sets a path's permission bits unless they already are `mode` (symbolic links are left alone). */
function restrict(path: string, dirMode: number, fileMode: number): void {
  const stat = lstatSync(path, { throwIfNoEntry: false });
  if (!stat || stat.isSymbolicLink()) return;
  const mode = stat.isDirectory() ? dirMode : fileMode;
  if ((stat.mode & 0o7777) !== mode) chmodSync(path, mode);
}

/**
 * Keeps what the stack writes to itself: sandboxed scripts run as other users on this
 * machine and may try any path, so the logs (they carry settings and tokens), the Temporal
 * database, Keycloak's and MailDev's files, script archives and anything else in the data
 * directory are private (directories 0700, files 0600), except the entries other users
 * must reach (SHARED_DATA_ENTRIES). Also tightens a data directory from an older start.
 */
export function securePrivateData(config: Pick<StackConfig, 'dataDir' | 'logDir'>): void {
  mkdirSync(config.dataDir, { recursive: true, mode: privateDir });
  for (const dir of [config.logDir, ...PRIVATE_DATA_DIRS.map((name) => join(config.dataDir, name))]) {
    mkdirSync(dir, { recursive: true, mode: privateDir });
  }
  for (const entry of readdirSync(config.dataDir)) {
    if (SHARED_DATA_ENTRIES.includes(entry)) continue;
    restrict(join(config.dataDir, entry), privateDir, privateFile);
  }
  restrict(config.logDir, privateDir, privateFile);
  for (const entry of readdirSync(config.logDir)) restrict(join(config.logDir, entry), privateDir, privateFile);
}
