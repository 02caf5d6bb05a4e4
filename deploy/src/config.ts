import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { PrerequisiteError } from './errors';
import { parseParts, type PartName } from './parts';

/** Every port the stack listens on. */
export interface StackPorts {
  /** The gateway (REST, /metrics, /ping): PORT. */
  gateway: number;
  postgres: number;
  temporal: number;
  temporalUi: number;
  /** Temporal's HTTP API (used for readiness) and metrics; fixed so they never collide. */
  temporalHttp: number;
  temporalMetrics: number;
  keycloak: number;
  keycloakManagement: number;
  maildevSmtp: number;
  maildevWeb: number;
  user: number;
  script: number;
  execution: number;
  userMetrics: number;
  scriptMetrics: number;
  executionMetrics: number;
  runnerMetrics: number;
}

export type PortName = keyof StackPorts;

export const DEFAULT_PORTS: Readonly<StackPorts> = {
  gateway: 3000,
  postgres: 5432,
  temporal: 7233,
  temporalUi: 8233,
  temporalHttp: 7243,
  temporalMetrics: 7244,
  keycloak: 8080,
  keycloakManagement: 9000,
  maildevSmtp: 1025,
  maildevWeb: 1080,
  user: 50051,
  script: 50052,
  execution: 50053,
  userMetrics: 9101,
  scriptMetrics: 9102,
  executionMetrics: 9103,
  runnerMetrics: 9104,
};

/** The environment variables of the launcher that choose a port (docs/configuration.md). */
export const PORT_ENV: Partial<Record<PortName, string>> = {
  gateway: 'PORT',
  postgres: 'PG_PORT',
  temporal: 'TEMPORAL_PORT',
  temporalUi: 'TEMPORAL_UI_PORT',
  keycloak: 'KEYCLOAK_PORT',
  keycloakManagement: 'KEYCLOAK_MANAGEMENT_PORT',
  maildevSmtp: 'MAILDEV_SMTP_PORT',
  maildevWeb: 'MAILDEV_WEB_PORT',
};

/** Which ports each part listens on (checked before that part starts). */
export const PART_PORTS: Record<PartName, PortName[]> = {
  postgres: ['postgres'],
  temporal: ['temporal', 'temporalUi', 'temporalHttp', 'temporalMetrics'],
  keycloak: ['keycloak', 'keycloakManagement'],
  maildev: ['maildevSmtp', 'maildevWeb'],
  user: ['user', 'userMetrics'],
  script: ['script', 'scriptMetrics'],
  execution: ['execution', 'executionMetrics'],
  runner: ['runnerMetrics'],
  gateway: ['gateway'],
};

export const TEMPORAL_VERSION = '1.5.1';
export const KEYCLOAK_VERSION = '26.5.6';
export const DEV_DB_USER = 'postgres';
export const DEV_DB_PASSWORD = 'postgres';
export const KEYCLOAK_REALM = 'gef';
export const KEYCLOAK_CLIENT_ID = 'gef-api';
export const DEV_CLIENT_SECRET = 'gef-api-dev-secret';
export const DEV_KEYCLOAK_ADMIN = 'admin';
export const DEV_KEYCLOAK_ADMIN_PASSWORD = 'admin';
/** The database of each part that has one (Keycloak's included). */
export const DATABASES = {
  user: 'gef_user',
  script: 'gef_script',
  execution: 'gef_execution',
  gateway: 'gef_gateway',
  keycloak: 'keycloak',
} as const;

export interface StackOptions {
  /** The repository root (services are started from it). Default: found from this file. */
  repoRoot?: string;
  /** PostgreSQL data, Temporal's SQLite file, artifacts, logs. Default GEF_DATA_DIR or <repo>/.data. */
  dataDir?: string;
  /** Downloaded tools. Default GEF_CACHE_DIR or ~/.cache/gef. */
  cacheDir?: string;
  /** Ports; any omitted takes the launcher's environment variable or the default. */
  ports?: Partial<StackPorts>;
  /** Parts to start: names, or `infra`, `services`, `all` (a comma list or an array). Default all. */
  parts?: readonly PartName[] | string;
  /** Where each part's log file goes. Default <dataDir>/logs. */
  logDir?: string;
  /** Extra environment for every child (wins over what the launcher computes). */
  env?: Record<string, string>;
  /** Milliseconds between TERM and KILL when stopping a part. Default 10 s. */
  gracePeriodMs?: number;
  /** Progress lines ("postgres ready in 2.1 s"). Default: none. */
  onStatus?: (line: string) => void;
  /** The environment the defaults are read from. Default process.env. */
  processEnv?: NodeJS.ProcessEnv;
  /**
   * An initialised PostgreSQL data directory (stopped cleanly) copied to <dataDir>/postgres
   * when that has none yet: tests seed a fresh data dir with Keycloak's schema and realm
   * already in, which saves Keycloak ~20 s of first start.
   */
  postgresSeed?: string;
}

/** Values the whole stack shares (secrets, mode), from the environment or dev defaults. */
export interface StackSettings {
  gefEnv: string;
  keycloakClientSecret: string;
  keycloakAdmin: string;
  keycloakAdminPassword: string;
  temporalCli: string | undefined;
  keycloakHome: string | undefined;
  javaHome: string | undefined;
}

export interface StackConfig {
  repoRoot: string;
  dataDir: string;
  cacheDir: string;
  logDir: string;
  ports: StackPorts;
  parts: PartName[];
  extraEnv: Record<string, string>;
  gracePeriodMs: number;
  settings: StackSettings;
  /** The launcher's own environment, inherited by every child. */
  baseEnv: NodeJS.ProcessEnv;
  postgresSeed: string | undefined;
  onStatus: (line: string) => void;
}

/** The repository root: deploy/src/.. /.. */
export function defaultRepoRoot(): string {
  return resolve(__dirname, '..', '..');
}

export function parsePort(name: string, value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new PrerequisiteError(`${name}=${value} is not a port number (1-65535)`);
  }
  return port;
}

export function resolvePorts(given: Partial<StackPorts> | undefined, env: NodeJS.ProcessEnv): StackPorts {
  const ports: StackPorts = { ...DEFAULT_PORTS };
  for (const key of Object.keys(DEFAULT_PORTS) as PortName[]) {
    const explicit = given?.[key];
    const envName = PORT_ENV[key];
    const fromEnv = envName !== undefined ? env[envName] : undefined;
    if (explicit !== undefined) ports[key] = parsePort(`ports.${key}`, String(explicit));
    else if (envName !== undefined && fromEnv !== undefined && fromEnv !== '') ports[key] = parsePort(envName, fromEnv);
  }
  const seen = new Map<number, PortName>();
  for (const key of Object.keys(ports) as PortName[]) {
    const other = seen.get(ports[key]);
    if (other !== undefined) {
      throw new PrerequisiteError(`port ${ports[key]} is given to both ${describePort(other)} and ${describePort(key)}; choose distinct ports`);
    }
    seen.set(ports[key], key);
  }
  return ports;
}

/** "PG_PORT" for ports with a variable, else what the port is for. */
export function describePort(name: PortName): string {
  const fixed: Partial<Record<PortName, string>> = {
    temporalHttp: 'Temporal HTTP API',
    temporalMetrics: 'Temporal metrics',
    user: 'user RPC',
    script: 'script RPC',
    execution: 'execution RPC',
    userMetrics: 'user metrics',
    scriptMetrics: 'script metrics',
    executionMetrics: 'execution metrics',
    runnerMetrics: 'runner metrics',
  };
  return PORT_ENV[name] ?? fixed[name] ?? name;
}

function absolute(path: string, base: string): string {
  return isAbsolute(path) ? path : resolve(base, path);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

export function resolveConfig(options: StackOptions = {}): StackConfig {
  const env = options.processEnv ?? process.env;
  const repoRoot = options.repoRoot ?? defaultRepoRoot();
  const dataDir = absolute(options.dataDir ?? nonEmpty(env.GEF_DATA_DIR) ?? join(repoRoot, '.data'), process.cwd());
  const cacheDir = absolute(options.cacheDir ?? nonEmpty(env.GEF_CACHE_DIR) ?? join(homedir(), '.cache', 'gef'), process.cwd());
  const parts = typeof options.parts === 'string' || options.parts === undefined ? parseParts(options.parts) : parseParts(options.parts.join(','));
  const extraEnv = options.env ?? {};
  const pick = (name: string): string | undefined => nonEmpty(extraEnv[name]) ?? nonEmpty(env[name]);
  return {
    repoRoot,
    dataDir,
    cacheDir,
    logDir: absolute(options.logDir ?? join(dataDir, 'logs'), process.cwd()),
    ports: resolvePorts(options.ports, env),
    parts,
    extraEnv,
    gracePeriodMs: options.gracePeriodMs ?? 10_000,
    settings: {
      gefEnv: pick('GEF_ENV') ?? 'development',
      keycloakClientSecret: pick('KEYCLOAK_CLIENT_SECRET') ?? DEV_CLIENT_SECRET,
      keycloakAdmin: pick('KC_BOOTSTRAP_ADMIN_USERNAME') ?? DEV_KEYCLOAK_ADMIN,
      keycloakAdminPassword: pick('KC_BOOTSTRAP_ADMIN_PASSWORD') ?? DEV_KEYCLOAK_ADMIN_PASSWORD,
      temporalCli: pick('TEMPORAL_CLI'),
      keycloakHome: pick('KEYCLOAK_HOME'),
      javaHome: pick('JAVA_HOME'),
    },
    baseEnv: env,
    postgresSeed: options.postgresSeed,
    onStatus: options.onStatus ?? (() => undefined),
  };
}
