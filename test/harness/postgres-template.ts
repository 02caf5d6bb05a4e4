/**
 * A PostgreSQL data directory in which Keycloak has already created its schema and
 * imported the gef realm, cached under the tool cache and copied into each test run's
 * fresh data dir: Keycloak's first start on an empty database costs ~20 s more than a
 * start on an initialised one. Keyed by the realm file, Keycloak and PostgreSQL versions.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { embeddedPostgresVersion, freeStackPorts, KEYCLOAK_VERSION, startStack } from '@gef/deploy';

const repoRoot = resolve(__dirname, '..', '..');
const FORMAT = 'v1';

export function templateKey(): string {
  const hash = createHash('sha256');
  hash.update(FORMAT);
  hash.update(KEYCLOAK_VERSION);
  hash.update(readFileSync(join(repoRoot, 'deploy', 'keycloak', 'gef-realm.json')));
  hash.update(embeddedPostgresVersion(repoRoot));
  return hash.digest('hex').slice(0, 16);
}

export function defaultCacheDir(): string {
  return process.env.GEF_CACHE_DIR || join(homedir(), '.cache', 'gef');
}

/** The cached template's postgres directory, built first if missing. */
export async function ensurePostgresTemplate(cacheDir: string, onStatus: (line: string) => void): Promise<string> {
  const root = join(cacheDir, 'e2e-template');
  const target = join(root, templateKey());
  const postgres = join(target, 'postgres');
  if (existsSync(join(postgres, 'PG_VERSION'))) return postgres;
  onStatus(`building the PostgreSQL + Keycloak template ${target} (once)`);
  // PostgreSQL runs as the postgres user, who cannot enter ~root: build under the temp dir.
  const work = mkdtempSync(join(tmpdir(), 'gef-template-'));
  try {
    const stack = await startStack({ dataDir: work, cacheDir, ports: await freeStackPorts(), parts: ['postgres', 'keycloak'], gracePeriodMs: 20_000, onStatus });
    await stack.stop();
    mkdirSync(root, { recursive: true });
    const staging = `${target}.tmp-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    cpSync(join(work, 'postgres'), join(staging, 'postgres'), { recursive: true, preserveTimestamps: true });
    try {
      renameSync(staging, target);
    } catch {
      // Another run built it at the same time.
      rmSync(staging, { recursive: true, force: true });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return postgres;
}
