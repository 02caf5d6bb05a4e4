/**
 * What the deployment checks (docker-compose.yml, deploy/k8s) know of the processes they
 * deploy, read from the repository at run time: each process workspace's configuration
 * schema (services/<name>/src/config.ts) and `loadConfig`, and the runner's capabilities.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..', '..');

/** The part of a zod schema the checks use. */
export interface FieldSchema {
  safeParse(value: unknown): { success: boolean; data?: unknown };
}
export type ConfigShape = Record<string, FieldSchema>;

/** One process workspace (services/<name>) as the checks see it. */
export interface Workspace {
  name: string;
  /** Its configuration schema, or undefined when config.ts exports none. */
  shape: ConfigShape | undefined;
  /** The export the shape came from (`configShape`, or whatever config.ts exports). */
  shapeExport: string | undefined;
  /** services/<name>/src/main.ts exists (what the image runs). */
  hasEntry: boolean;
  /** config.ts's loadConfig, when it exports one. */
  loadConfig: ((env: Record<string, string | undefined>) => unknown) | undefined;
}

/** Secrets every process refuses to run with in production unless set for real. */
export const SECRET_KEYS = [
  'KEYCLOAK_CLIENT_SECRET',
  'EXECUTION_TOKEN_SECRET',
  'BUILD_TOKEN_SECRET',
  'GEF_ADMIN_EMAIL',
  'GEF_ADMIN_PASSWORD',
  'SERVICE_API_KEY',
  'RUNNER_API_KEY',
  'SMTP_USER',
  'SMTP_PASSWORD',
];

function isFieldSchema(value: unknown): value is FieldSchema {
  return typeof value === 'object' && value !== null && typeof (value as FieldSchema).safeParse === 'function';
}

function isShape(value: unknown): value is ConfigShape {
  return typeof value === 'object' && value !== null && Object.keys(value).length > 0 && Object.values(value).every(isFieldSchema);
}

/** `configShape`, else any exported shape whose name ends in ConfigShape. */
export function findShape(exports: Record<string, unknown>): { name: string; shape: ConfigShape } | undefined {
  const preferred = exports['configShape'];
  if (isShape(preferred)) return { name: 'configShape', shape: preferred };
  for (const [name, value] of Object.entries(exports)) {
    if (/configshape$/i.test(name) && isShape(value)) return { name, shape: value };
  }
  return undefined;
}

/** The process workspaces named in the root package.json (services/* except common). */
export function processWorkspaceDirs(): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] };
  return pkg.workspaces.filter((w) => w.startsWith('services/') && w !== 'services/common');
}

export async function loadWorkspaces(): Promise<Map<string, Workspace>> {
  const workspaces = new Map<string, Workspace>();
  for (const dir of processWorkspaceDirs()) {
    const name = posix.basename(dir);
    const configPath = join(ROOT, dir, 'src', 'config.ts');
    // Not named `exports`: that would hide this module's own in the CommonJS it compiles to.
    let loaded: Record<string, unknown> = {};
    if (existsSync(configPath)) loaded = (await import(configPath)) as Record<string, unknown>;
    const found = findShape(loaded);
    const loadConfig = loaded['loadConfig'];
    workspaces.set(name, {
      name,
      shape: found?.shape,
      shapeExport: found?.name,
      hasEntry: existsSync(join(ROOT, dir, 'src', 'main.ts')),
      loadConfig: typeof loadConfig === 'function' ? (loadConfig as Workspace['loadConfig']) : undefined,
    });
  }
  return workspaces;
}

/** The capabilities the runner's sandbox needs (services/runner/src/sandbox/capabilities.ts). */
export interface RunnerCapabilities {
  sandbox: string[];
  network: string[];
}

/** The capabilities a runner with this SANDBOX_NETWORK needs: nftables rules need NET_ADMIN unless the network is open. */
export function runnerNeeds(capabilities: RunnerCapabilities, sandboxNetwork: string | undefined): string[] {
  return [...capabilities.sandbox, ...(sandboxNetwork === 'open' ? [] : capabilities.network)];
}

/** The capability names the runner asks for, read from its source at run time. */
export async function loadRunnerCapabilities(): Promise<RunnerCapabilities> {
  const loaded = (await import(join(ROOT, 'services', 'runner', 'src', 'sandbox', 'capabilities.ts'))) as Record<string, Record<string, number>>;
  return { sandbox: Object.keys(loaded['sandboxCapabilities'] ?? {}), network: Object.keys(loaded['networkCapability'] ?? {}) };
}

/** A stand-in for a required variable, shaped to pass the schemas (URL-safe, strong). */
export function sampleFor(variable: string): string {
  return /EMAIL/.test(variable) ? 'operator@example.org' : `Sample-${variable.toLowerCase().replace(/_/g, '-')}-0123456789`;
}

/**
 * An export of the launcher (deploy/src), read at run time so that only the test that
 * compares with it fails when the launcher moves it.
 */
export async function launcherExport<T>(file: string, name: string): Promise<T> {
  const loaded = (await import(join(ROOT, 'deploy', 'src', file))) as Record<string, unknown>;
  if (!(name in loaded)) throw new Error(`deploy/src/${file} no longer exports ${name}`);
  return loaded[name] as T;
}
