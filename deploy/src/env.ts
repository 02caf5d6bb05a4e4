import { join } from 'node:path';
import { runnerStopDefaults, runnerStopSeconds } from '@gef/common/runner-stop';
import {
  DATABASES,
  DEV_DB_PASSWORD,
  DEV_DB_USER,
  KEYCLOAK_CLIENT_ID,
  KEYCLOAK_REALM,
  type StackConfig,
  type StackPorts,
} from './config';
import type { ServicePart } from './parts';

const LOCAL = '127.0.0.1';

export function databaseUrl(ports: StackPorts, database: string): string {
  return `postgres://${DEV_DB_USER}:${DEV_DB_PASSWORD}@${LOCAL}:${ports.postgres}/${database}`;
}

/** The URLs an operator or a test uses. */
export interface StackUrls {
  /** Gateway base URL (http://127.0.0.1:PORT). */
  gateway: string;
  api: string;
  docs: string;
  health: string;
  temporal: string;
  temporalUi: string;
  keycloak: string;
  keycloakAdmin: string;
  keycloakManagement: string;
  maildevWeb: string;
  /** MailDev 3's REST API (GET /email lists the mails; v2 had it at the web root). */
  maildevApi: string;
  maildevSmtp: string;
  postgres: string;
  user: string;
  script: string;
  execution: string;
}

export function stackUrls(ports: StackPorts, host = 'localhost'): StackUrls {
  const http = (port: number): string => `http://${host}:${port}`;
  return {
    gateway: http(ports.gateway),
    api: `${http(ports.gateway)}/api/v1`,
    docs: `${http(ports.gateway)}/api/docs`,
    health: `${http(ports.gateway)}/api-health`,
    temporal: `${LOCAL}:${ports.temporal}`,
    temporalUi: http(ports.temporalUi),
    keycloak: http(ports.keycloak),
    keycloakAdmin: `${http(ports.keycloak)}/admin/`,
    keycloakManagement: http(ports.keycloakManagement),
    maildevWeb: http(ports.maildevWeb),
    maildevApi: `${http(ports.maildevWeb)}/api`,
    maildevSmtp: `smtp://${LOCAL}:${ports.maildevSmtp}`,
    postgres: `postgres://${DEV_DB_USER}:${DEV_DB_PASSWORD}@${LOCAL}:${ports.postgres}/postgres`,
    user: `http://${LOCAL}:${ports.user}`,
    script: `http://${LOCAL}:${ports.script}`,
    execution: `http://${LOCAL}:${ports.execution}`,
  };
}

/**
 * The variables every service gets (docs/configuration.md): where the other parts are,
 * shared secrets and mode. Per-service ones come from serviceEnv().
 */
export function sharedServiceEnv(config: StackConfig): Record<string, string> {
  const { ports, settings } = config;
  return {
    GEF_ENV: settings.gefEnv,
    HOST: LOCAL,
    TEMPORAL_ADDRESS: `${LOCAL}:${ports.temporal}`,
    TEMPORAL_NAMESPACE: 'default',
    KEYCLOAK_URL: `http://${LOCAL}:${ports.keycloak}`,
    KEYCLOAK_REALM,
    KEYCLOAK_CLIENT_ID,
    SMTP_HOST: LOCAL,
    SMTP_PORT: String(ports.maildevSmtp),
    PUBLIC_URL: `http://localhost:${ports.gateway}`,
    USER_SERVICE_URL: `http://${LOCAL}:${ports.user}`,
    SCRIPT_SERVICE_URL: `http://${LOCAL}:${ports.script}`,
    EXECUTION_SERVICE_URL: `http://${LOCAL}:${ports.execution}`,
    GEF_DATA_DIR: config.dataDir,
  };
}

/** The first sandbox uid of a stack's runners: 1,000 users per stack, apart by gateway port. */
export const sandboxUidBase = (gatewayPort: number): number => 900_000 + (gatewayPort % 3000) * 1000;

/** V8 settings of the script service (also in docker-compose.yml). */
export const scriptServiceNodeOptions = '--max-semi-space-size=4';

/** V8 settings of the execution service (also in docker-compose.yml). */
export const executionServiceNodeOptions = '--max-semi-space-size=32';

/** V8 settings of the gateway (also in docker-compose.yml). */
export const gatewayNodeOptions = '--max-semi-space-size=2';

/** The variables one service gets: shared ones, its ports, its own database. */
export function serviceEnv(part: ServicePart, config: StackConfig): Record<string, string> {
  const { ports } = config;
  const env = sharedServiceEnv(config);
  switch (part) {
    case 'user':
      // The Keycloak client's secret is the user service's alone: its service account manages
      // users. The gateway checks Keycloak's tokens by the realm's public keys.
      Object.assign(env, {
        PORT: String(ports.user),
        METRICS_PORT: String(ports.userMetrics),
        DATABASE_URL: databaseUrl(ports, DATABASES.user),
        KEYCLOAK_CLIENT_SECRET: config.settings.keycloakClientSecret,
      });
      break;
    case 'script':
      Object.assign(env, {
        PORT: String(ports.script),
        METRICS_PORT: String(ports.scriptMetrics),
        DATABASE_URL: databaseUrl(ports, DATABASES.script),
        // Archives stream through in chunks: a small young generation collects them before
        // they pile up (resident memory stays flat while 50 MB pass).
        NODE_OPTIONS: scriptServiceNodeOptions,
      });
      break;
    case 'execution':
      Object.assign(env, {
        PORT: String(ports.execution),
        METRICS_PORT: String(ports.executionMetrics),
        DATABASE_URL: databaseUrl(ports, DATABASES.execution),
        // Log batches (10,000 lines in, pages of thousands out) make many short-lived
        // objects: with V8's default young generation (16 MiB semi-spaces) many outlived two
        // collections and were promoted, and the old generation's collections took 10 % of
        // the service's time while a run wrote 100,000 lines. 32 MiB: that run's lines were
        // readable 20-30 % sooner, for ~55 MiB more resident memory (64 MiB: no faster).
        NODE_OPTIONS: executionServiceNodeOptions,
      });
      break;
    case 'runner':
      // The runner has no server and no database credentials. Each stack on a host gets
      // sandbox users of its own (by its gateway port), so each stack's network rules, which
      // let its scripts reach its own API only, govern only its own scripts.
      Object.assign(env, { METRICS_PORT: String(ports.runnerMetrics), SANDBOX_UID_BASE: String(sandboxUidBase(ports.gateway)) });
      break;
    case 'gateway':
      // /metrics is served on PORT. Uploads stream through in small messages, each leaving
      // copies of its bytes outside V8's heap that only a young-generation collection frees:
      // a small young generation collects them every few MiB uploaded. 2 MiB: a 50 MB
      // upload's resident growth about 12 MiB (1 MiB: about 9; 4: 21; 8: 32), and cached
      // reads 13-30 % faster than with 1 MiB, whose collections took 13 % of the gateway's
      // time under load; see docs/benchmarks.md.
      Object.assign(env, { PORT: String(ports.gateway), DATABASE_URL: databaseUrl(ports, DATABASES.gateway), NODE_OPTIONS: gatewayNodeOptions });
      break;
  }
  return env;
}

/** Variables a child must not inherit from the launcher's own environment. */
const NOT_INHERITED: Record<ServicePart, string[]> = {
  user: ['METRICS_PORT', 'RUNNER_API_KEY'],
  script: ['METRICS_PORT', 'KEYCLOAK_CLIENT_SECRET'],
  execution: ['METRICS_PORT', 'KEYCLOAK_CLIENT_SECRET'],
  runner: ['PORT', 'DATABASE_URL', 'PGPASSWORD', 'KEYCLOAK_CLIENT_SECRET', 'EXECUTION_TOKEN_SECRET', 'BUILD_TOKEN_SECRET', 'GEF_ADMIN_PASSWORD', 'SERVICE_API_KEY'],
  gateway: ['METRICS_PORT', 'KEYCLOAK_CLIENT_SECRET', 'RUNNER_API_KEY'],
};

/** The complete environment of a service process: inherited, computed, then extra. */
export function serviceProcessEnv(part: ServicePart, config: StackConfig): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...config.baseEnv };
  for (const name of NOT_INHERITED[part]) delete env[name];
  const computed = serviceEnv(part, config);
  return { ...env, ...computed, ...config.extraEnv };
}

/**
 * TERM to KILL for a runner with this environment: the longest its stop may take (it drains
 * its runs first), a few seconds more. A setting the runner would refuse counts as its default.
 */
export function runnerStopGraceMs(env: NodeJS.ProcessEnv): number {
  const seconds = (name: string, fallback: number): number => {
    const value = Number(env[name]?.trim() || Number.NaN);
    return Number.isFinite(value) && value >= 0 ? value : fallback;
  };
  const drain = seconds('RUNNER_DRAIN_SECONDS', runnerStopDefaults.drainSeconds);
  const killGrace = seconds('SANDBOX_KILL_GRACE_SECONDS', runnerStopDefaults.killGraceSeconds);
  return (runnerStopSeconds(drain, killGrace) + 5) * 1000;
}

/** The service's entry point, relative to the repository root. */
export function serviceEntry(part: ServicePart, repoRoot: string): string {
  return join(repoRoot, 'services', part, 'src', 'main.ts');
}
