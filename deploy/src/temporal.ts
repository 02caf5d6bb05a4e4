import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { StackConfig } from './config';
import { ManagedProcess } from './process';
import type { Launched } from './launched';
import { httpOk, waitUntil } from './wait';

/** Search attributes registered at start, for the workflows to index executions by. */
export const SEARCH_ATTRIBUTES = ['GefUserId=Keyword', 'GefScriptId=Keyword', 'GefStatus=Keyword'];

export function temporalArgs(config: StackConfig): string[] {
  const { ports } = config;
  return [
    'server',
    'start-dev',
    '--db-filename',
    join(config.dataDir, 'temporal', 'temporal.db'),
    '--ip',
    '127.0.0.1',
    '--port',
    String(ports.temporal),
    '--ui-port',
    String(ports.temporalUi),
    '--http-port',
    String(ports.temporalHttp),
    '--metrics-port',
    String(ports.temporalMetrics),
    '--namespace',
    'default',
    ...SEARCH_ATTRIBUTES.flatMap((attribute) => ['--search-attribute', attribute]),
    // One partition per task queue (the server's default is four): with a handful of
    // pollers a task that lands on a partition nobody polls waits to be forwarded, tens of
    // milliseconds on every workflow and activity task. One machine needs no more.
    // Eager workflow start: a run's workflow, started by the execution service whose worker
    // polls its queue, gets its first task in the start's answer. Workflow state cached for
    // 2 minutes, not the hour of the default, and expired entries purged every minute by
    // the cache's background eviction (off by default: without it an expired entry leaves
    // only when looked up again, which an ended run never is, so the cache of ended runs
    // grew the server by ~2 MiB a minute through two 30-minute soaks, TTL or not).
    ...[
      'matching.numTaskqueueReadPartitions=1',
      'matching.numTaskqueueWritePartitions=1',
      'system.enableEagerWorkflowStart=true',
      'history.cacheTTL="2m"',
      'history.cacheBackgroundEvict={"Enabled":true,"LoopInterval":"1m","MaxEntryPerCall":1024}',
    ].flatMap((value) => ['--dynamic-config-value', value]),
    // SQLite in write-ahead-log mode, synced at checkpoints: a rollback journal synced on
    // every commit made each workflow update wait on the disk, and under load they queued
    // behind one another (seconds per RespondWorkflowTaskCompleted). A crash of the process
    // loses nothing committed; a crash of the machine may lose the last moments.
    ...['journal_mode=wal', 'synchronous=normal'].flatMap((pragma) => ['--sqlite-pragma', pragma]),
  ];
}

/** Starts the Temporal dev server; ready when its default namespace and Web UI answer. */
export function launchTemporal(config: StackConfig, binary: string, timeoutMs = 90_000): Launched {
  mkdirSync(join(config.dataDir, 'temporal'), { recursive: true });
  const proc = ManagedProcess.spawn({
    name: 'temporal',
    command: binary,
    args: temporalArgs(config),
    cwd: config.dataDir,
    env: { ...config.baseEnv },
    logFile: join(config.logDir, 'temporal.log'),
  });
  const namespaceUrl = `http://127.0.0.1:${config.ports.temporalHttp}/api/v1/namespaces/default`;
  const uiUrl = `http://127.0.0.1:${config.ports.temporalUi}/`;
  const ready = waitUntil(async () => (await httpOk(namespaceUrl)) && (await httpOk(uiUrl)), { what: 'temporal', timeoutMs, process: proc });
  return { proc, ready, startAgainWhen: lostPortRace };
}

/**
 * The dev server picks free ports for its internal services (matching, history, frontend
 * membership) by itself and binds them moments later; another process can take one in
 * between, and the server exits with "address already in use". Its own listed ports were
 * checked free before the start, so another start picks other ports and succeeds.
 */
export function lostPortRace(startLog: string): boolean {
  return /address already in use/i.test(startLog);
}
