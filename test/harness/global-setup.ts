/**
 * Jest globalSetup of the e2e project: starts the whole stack once, on free ports, with a
 * fresh data directory under the system temp dir (tools stay in the shared cache), and
 * tells the tests where it is:
 *   GEF_TEST_API_URL     the gateway's base URL
 *   GEF_TEST_STACK_FILE  a JSON file with urls, ports, env, pids, dataDir (see stack.ts)
 *   GEF_TEST_GATES_DIR   where tests' gates are made (removed with the stack)
 * GEF_TEST_PARTS=infra starts only PostgreSQL, Temporal, Keycloak and MailDev (any part
 * list the launcher accepts works). GEF_TEST_KEEP_DATA=1 keeps the data dir afterwards.
 * The PostgreSQL data starts as a copy of a cached template in which Keycloak has already
 * set up its schema and realm (postgres-template.ts; GEF_TEST_NO_TEMPLATE=1 skips it).
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeStackPorts, KEYCLOAK_VERSION, parseParts, startStack, type Stack } from '@gef/deploy';
import { startControlServer } from './control-server';
import { defaultCacheDir, ensurePostgresTemplate } from './postgres-template';
import type { StackInfo } from './stack';
import { setHarness, type Harness } from './state';

export default async function globalSetup(): Promise<void> {
  const began = Date.now();
  const dataDir = mkdtempSync(join(tmpdir(), 'gef-e2e-'));
  const ports = await freeStackPorts();
  const status = (line: string): void => {
    if (process.env.GEF_TEST_QUIET !== '1') process.stderr.write(`[stack] ${line}\n`);
  };
  const parts = parseParts(process.env.GEF_TEST_PARTS);
  const cacheDir = defaultCacheDir();
  // Keycloak starts ~20 s sooner on a database it has initialised before (GEF_TEST_NO_TEMPLATE=1: don't).
  const seed =
    parts.includes('postgres') && parts.includes('keycloak') && process.env.GEF_TEST_NO_TEMPLATE !== '1'
      ? await ensurePostgresTemplate(cacheDir, status)
      : undefined;
  status(`starting ${parts.join(', ')} in ${dataDir} (Keycloak ${KEYCLOAK_VERSION}${seed ? ', database from the template' : ''})`);
  const stack: Stack = await startStack({
    dataDir,
    cacheDir,
    ports,
    parts,
    postgresSeed: seed,
    env: {
      GEF_ENV: 'test',
      // Tests register and log in many users from one address; per-account limits stay as configured.
      RATE_LIMIT_LOGIN_PER_CLIENT: '100000/60',
      RATE_LIMIT_REGISTER_PER_CLIENT: '100000/3600',
      RATE_LIMIT_RECOVER_PER_CLIENT: '100000/3600',
      RATE_LIMIT_REFRESH_PER_CLIENT: '100000/60',
      // The e2e, fault and fuzz suites run thousands of scripts from this one address.
      RATE_LIMIT_RUN_PER_CLIENT: '100000/60',
      // scripts.test.ts publishes about thirty archives as one account within a minute or
      // two (twenty at once among them), and eighteen hostile ones as another in seconds.
      RATE_LIMIT_UPLOAD_PER_ACCOUNT: '100000/60',
      RATE_LIMIT_UPLOAD_PER_CLIENT: '100000/60',
      // Scripts that fill the disk (hostile-scripts.test.ts) reach the limits sooner.
      SANDBOX_MAX_FILE_BYTES: String(128 * 1024 ** 2),
      SANDBOX_MAX_DISK_BYTES: String(512 * 1024 ** 2),
      // runner-drain.test.ts stops a runner with a run that outlasts its drain.
      RUNNER_DRAIN_SECONDS: '10',
    },
    gracePeriodMs: 5000,
    onStatus: status,
  });
  const killNow = (): void => stack.killNow();
  // Jest interrupted (Ctrl-C) skips globalTeardown: the stack must not outlive it.
  const onSignal = (signal: NodeJS.Signals): void => {
    killNow();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('exit', killNow);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const file = join(dataDir, 'stack.json');
  // It holds every service's settings and secrets: the test user's alone (sandboxed scripts
  // run as other users on this machine).
  const writeInfo = (): void => {
    writeFileSync(file, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
  };
  const control = await startControlServer(stack, () => {
    info.pids = stack.pids();
    writeInfo();
  });
  const info: StackInfo = {
    apiUrl: stack.urls.gateway,
    urls: { ...stack.urls },
    ports: { ...stack.ports },
    env: stack.env,
    pids: stack.pids(),
    parts: [...stack.parts],
    dataDir: stack.dataDir,
    logDir: stack.logDir,
    controlUrl: control.url,
    timings: { ...stack.timings, total: Date.now() - began },
    keycloak: {
      realm: stack.env.user.KEYCLOAK_REALM ?? 'gef',
      clientId: stack.env.user.KEYCLOAK_CLIENT_ID ?? 'gef-api',
      clientSecret: stack.config.settings.keycloakClientSecret,
      admin: stack.config.settings.keycloakAdmin,
      adminPassword: stack.config.settings.keycloakAdminPassword,
    },
  };
  writeInfo();
  process.env.GEF_TEST_API_URL = stack.urls.gateway;
  process.env.GEF_TEST_STACK_FILE = file;
  // The gates tests hold running scripts at (helpers/executions.ts): beside the data dir,
  // which sandboxed scripts may not enter; this one they may pass through, not list.
  const gatesDir = mkdtempSync(join(tmpdir(), 'gef-e2e-gates-'));
  chmodSync(gatesDir, 0o711);
  process.env.GEF_TEST_GATES_DIR = gatesDir;
  const harness: Harness = { stack, control: control.server, dataDir, gatesDir, detach: () => {
    process.off('exit', killNow);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  } };
  setHarness(harness);
  status(`stack ready for tests in ${((Date.now() - began) / 1000).toFixed(1)} s; details in ${file}`);
}
