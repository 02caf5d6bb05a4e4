import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DATABASES, DEV_DB_PASSWORD, DEV_DB_USER, type StackConfig } from './config';
import type { Launched } from './launched';
import type { JavaInfo } from './prerequisites';
import { ManagedProcess } from './process';
import { oneLine } from './errors';
import { reconcileRealm } from './keycloak-realm';
import { httpOk, waitUntil } from './wait';

/** The realm imported at first start (an existing realm is left alone). */
export const REALM_FILE = join(__dirname, '..', 'keycloak', 'gef-realm.json');

/**
 * `kc.sh start-dev` options. Measured on a 2-core machine: start-dev with an unchanged
 * configuration reuses its build and is ready in ~17 s; `build` + `start --optimized`
 * took 25-33 s (production mode sets up a clustered cache), so dev mode it is.
 */
export function keycloakArgs(config: StackConfig): string[] {
  const { ports } = config;
  return [
    'start-dev',
    '--http-host=127.0.0.1',
    `--http-port=${ports.keycloak}`,
    `--http-management-port=${ports.keycloakManagement}`,
    '--health-enabled=true',
    '--db=postgres',
    `--db-url=jdbc:postgresql://127.0.0.1:${ports.postgres}/${DATABASES.keycloak}`,
    `--db-username=${DEV_DB_USER}`,
    // The password comes in the environment (KC_DB_PASSWORD): a command line is readable by
    // every process on the machine, scripts' sandbox users included.
    '--db-pool-max-size=20',
    '--import-realm',
    '--log-console-color=false',
    // Runtimes log in with one account from many runs at once; with brute-force detection on,
    // Keycloak would otherwise refuse all but one of concurrent logins of the same user.
    '--spi-brute-force-protector-default-brute-force-detector-allow-concurrent-requests=true',
  ];
}

/**
 * Keycloak's environment: the bootstrap admin of the master realm, the values the realm
 * file's ${...} placeholders take, and a JVM tuned for start time (C1 only: a dev server
 * needs a fast start more than peak throughput, ~15% sooner here).
 */
export function keycloakEnv(config: StackConfig, java: JavaInfo): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...config.baseEnv,
    KC_BOOTSTRAP_ADMIN_USERNAME: config.settings.keycloakAdmin,
    KC_BOOTSTRAP_ADMIN_PASSWORD: config.settings.keycloakAdminPassword,
    KC_DB_PASSWORD: DEV_DB_PASSWORD,
    KEYCLOAK_CLIENT_SECRET: config.settings.keycloakClientSecret,
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: String(config.ports.maildevSmtp),
    JAVA_OPTS_APPEND: [
      config.baseEnv.JAVA_OPTS_APPEND,
      '-XX:TieredStopAtLevel=1',
      // The home is shared by every stack on the machine; the transaction log is not.
      `-Dquarkus.transaction-manager.object-store.directory=${join(config.dataDir, 'keycloak', 'transaction-logs')}`,
      // Vert.x's file cache, by default a world-writable /tmp/vertx-cache (not sticky): in
      // the stack's own data directory, where no script's user reaches it.
      `-Dvertx.cacheDirBase=${join(config.dataDir, 'keycloak', 'vertx-cache')}`,
    ]
      .filter(Boolean)
      .join(' '),
  };
  if (java.home !== undefined) env.JAVA_HOME = java.home;
  else delete env.JAVA_HOME;
  return env;
}

/** Starts Keycloak from an unpacked home; ready when /health/ready answers on the management port. */
export function launchKeycloak(config: StackConfig, home: string, java: JavaInfo, timeoutMs = 240_000): Launched {
  // --import-realm reads <home>/data/import.
  const importDir = join(home, 'data', 'import');
  mkdirSync(importDir, { recursive: true });
  copyFileSync(REALM_FILE, join(importDir, 'gef-realm.json'));
  const proc = ManagedProcess.spawn({
    name: 'keycloak',
    command: join(home, 'bin', 'kc.sh'),
    args: keycloakArgs(config),
    cwd: home,
    env: keycloakEnv(config, java),
    logFile: join(config.logDir, 'keycloak.log'),
  });
  const readyUrl = `http://127.0.0.1:${config.ports.keycloakManagement}/health/ready`;
  const realmUrl = `http://127.0.0.1:${config.ports.keycloak}/realms/gef/.well-known/openid-configuration`;
  const ready = waitUntil(async () => (await httpOk(readyUrl)) && (await httpOk(realmUrl)), {
    what: 'keycloak',
    timeoutMs,
    intervalMs: 250,
    process: proc,
  }).then(async () => {
    try {
      const changed = await reconcileRealm(config);
      if (changed.length > 0) config.onStatus(`keycloak: updated ${changed.join(', ')} in realm gef`);
    } catch (error) {
      // Not fatal: the realm works, only these settings may be stale.
      config.onStatus(`keycloak: could not check the realm's SMTP server and client secret (${oneLine(error)})`);
    }
  });
  return { proc, ready };
}
