import os from 'node:os';
import path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { keyToSend, serviceClient, type Logger } from '@gef/common';
import { SupervisedWorker, type TemporalSettings } from '@gef/common/temporal';
import { taskQueues } from '@gef/workflows/task-queues';
import { execution, script } from '@gef/protos';
import { createRunnerActivities } from './activities';
import { ownerSafeFailures } from './activities/owner-safe-failures';
import { ArchiveCache } from './archives/archive-cache';
import { ExtractedArchives } from './archives/extracted-archives';
import { scriptServiceSource } from './archives/script-service-source';
import type { RunnerConfig } from './config';
import { scriptServiceRequirements } from './environments/build-requirements';
import { EnvironmentCache } from './environments/environment-cache';
import { environmentSettings } from './environments/settings';
import { executionsApi } from './execution-log/execution-service-api';
import { PresenceReporter } from './presence-reporter';
import { ForkServer } from './runtimes/python/fork-server';
import { InterpreterPool } from './runtimes/python/interpreter-pool';
import { installShim, type RunnerDirs } from './sandbox/runner-dirs';
import { setUpMemoryCgroups, type MemoryCgroups } from './sandbox/memory-cgroups';
import { Sandbox } from './sandbox/sandbox';
import { sandboxMode } from './sandbox/sandbox-mode';

/** The locale a script gets: the runner's, else C.UTF-8. */
function localeOf(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = { LANG: env['LANG'] ?? 'C.UTF-8' };
  for (const [key, value] of Object.entries(env)) if (/^LC_[A-Z]+$/.test(key)) out[key] = value;
  return out;
}

/**
 * The runner's Temporal worker (builds' environments and script runs) and its pool of
 * waiting Python interpreters (stop it after the worker).
 */
export async function createWorker(settings: TemporalSettings, config: RunnerConfig, dirs: RunnerDirs, logger: Logger) {
  // The runner's calls are idempotent (numbered lines, repeatable starts and completions):
  // a service or database that is away for a while is waited for, not a failed attempt.
  // The runners' key reaches only the RPCs runners make.
  const options = { retryUnavailableMs: 60_000, serviceKey: keyToSend(config.RUNNER_API_KEY) };
  const scripts = serviceClient(script.ScriptService, config.SCRIPT_SERVICE_URL, options);
  const executions = serviceClient(execution.ExecutionService, config.EXECUTION_SERVICE_URL, options);
  const { mode, prlimit, setpriv, privateProc } = await sandboxMode(config, logger);
  const memoryGroups = await memoryCgroupsOf(config, mode, logger);
  const sandboxOf = (uids: { base: number; count: number }) =>
    new Sandbox({ mode, prlimit, setpriv, ...(privateProc ? { privateProc } : {}), uidBase: uids.base, uidCount: uids.count, dirs, ...(memoryGroups ? { memoryGroups } : {}) });
  const sandbox = sandboxOf(config.sandboxUids.scripts);
  // Environments within their budget (never one a run uses; one removed is built again).
  const environmentCache = new EnvironmentCache(path.join(dirs.root, 'environments'), {
    maxBytes: config.RUNNER_ENVIRONMENTS_MAX_BYTES,
    onError: (dir, err) => logger.warn({ dir, err: String(err) }, 'an environment could not be removed or measured'),
    onRemoved: (dir) => logger.info({ dir }, 'environment removed (RUNNER_ENVIRONMENTS_MAX_BYTES); built again when a run needs it'),
  });
  const environments = {
    ...environmentSettings(config, dirs.root),
    cache: environmentCache,
    // Builds as users of their own: pip runs the build code of what a script requires.
    builds: {
      sandbox: sandboxOf(config.sandboxUids.builds),
      limits: { memoryBytes: config.SANDBOX_MEMORY_BYTES, cpuSeconds: Infinity, processes: config.SANDBOX_MAX_PROCESSES, openFiles: config.SANDBOX_MAX_OPEN_FILES, fileBytes: config.SANDBOX_MAX_FILE_BYTES },
      // A run's disk quota; measured less often than a run's (an environment holds thousands of files).
      disk: { maxBytes: config.SANDBOX_MAX_DISK_BYTES, checkMs: Math.max(5000, config.SANDBOX_DISK_CHECK_MS) },
    },
  };
  // Leftovers of both kinds of user (their locks share one directory).
  const swept = await sandbox.sweep();
  if (swept > 0) logger.info({ swept }, 'leftovers of runs of a runner that died removed');
  const cacheError = (what: string) => (target: string, err: unknown) => logger.warn({ target, err: String(err) }, `${what} could not be removed`);
  const extracted = new ExtractedArchives(dirs.extracted, sandbox, { maxBytes: config.RUNNER_EXTRACTED_MAX_BYTES, onError: cacheError('an extracted archive') });
  const archives = new ArchiveCache(dirs.archives, scriptServiceSource(scripts), { maxBytes: config.RUNNER_ARCHIVES_MAX_BYTES, onError: cacheError('an archive') });
  // What an earlier process left is counted (and the budgets kept) once, at start.
  const [trees, archived, builtBefore] = await Promise.all([extracted.recover(), archives.recover(), environmentCache.recover()]);
  logger.info(
    {
      extracted: { ...trees, bytes: extracted.bytes, maxBytes: config.RUNNER_EXTRACTED_MAX_BYTES },
      archives: { ...archived, bytes: archives.bytes, maxBytes: config.RUNNER_ARCHIVES_MAX_BYTES },
      environments: { ...builtBefore, bytes: environmentCache.bytes, maxBytes: config.RUNNER_ENVIRONMENTS_MAX_BYTES },
    },
    'runner caches',
  );
  const shim = await installShim(dirs, path.join(__dirname, 'runtimes', 'python', 'gef_runtime.py'));
  const locale = localeOf(config.toolEnv);
  const baseEnv = { PATH: '/usr/local/bin:/usr/bin:/bin', ...locale };
  const defaults = {
    memoryBytes: config.SANDBOX_MEMORY_BYTES,
    processes: config.SANDBOX_MAX_PROCESSES,
    openFiles: config.SANDBOX_MAX_OPEN_FILES,
    fileBytes: config.SANDBOX_MAX_FILE_BYTES,
  };
  const disk = { maxBytes: config.SANDBOX_MAX_DISK_BYTES, checkMs: config.SANDBOX_DISK_CHECK_MS };
  // Waiting interpreters start with the default limits and no CPU limit yet: each run sets
  // its own (lower) before the script's code runs; a run allowed more starts its own.
  const forkServer = config.PYTHON_FORK_SERVER === 'on' ? new ForkServer({ python: config.PYTHON, shim, env: baseEnv, logger }) : undefined;
  const fork = forkServer ? { forkServer } : {};
  const pool = new InterpreterPool({ sandbox, python: config.PYTHON, shim, size: config.pythonPoolSize, limits: { ...defaults, cpuSeconds: Infinity }, env: baseEnv, ...fork, logger });
  pool.start();
  logger.info({ sandbox: mode, root: dirs.root, python: config.PYTHON, concurrency: config.RUNNER_CONCURRENCY, pythonPool: config.pythonPoolSize, forkServer: config.PYTHON_FORK_SERVER }, 'runner ready to run scripts');
  const worker = new SupervisedWorker(
    settings,
    {
      taskQueue: taskQueues.runner,
      activities: createRunnerActivities({
        python: config.PYTHON,
        environments,
        appendBuildLog: async (ref, lines, firstSeq, signal) => {
          await scripts.appendBuildLog(create(script.AppendBuildLogRequestSchema, { ...ref, lines, firstSeq }), signal ? { signal } : {});
        },
        buildRequirements: scriptServiceRequirements(scripts),
        logger,
        // A build checks its script's entry point, from the archive runs of it will use.
        scripts: { archives, extracted, limits: { ...defaults, cpuSeconds: 300 } },
        run: {
          executions: executionsApi(executions),
          archives,
          extracted,
          sandbox,
          pool,
          ...fork,
          baseEnv,
          environments,
          shim,
          envName: config.GEF_ENV,
          apiUrl: config.apiUrl,
          locale,
          defaults,
          disk,
          killGraceMs: config.SANDBOX_KILL_GRACE_SECONDS * 1000,
          heartbeatIntervalMs: config.RUN_HEARTBEAT_INTERVAL_MS,
          logFlushMs: config.RUN_LOG_FLUSH_MS,
          logMaxLines: config.RUN_LOG_MAX_LINES,
          logMaxBytes: config.RUN_LOG_MAX_BYTES,
          logger,
        },
      }),
      // A platform service's or a system call's error fails an attempt with what the owner may read.
      interceptors: { activity: [ownerSafeFailures(logger)] },
      maxConcurrentActivityTaskExecutions: config.RUNNER_CONCURRENCY,
      // Stopping, the worker polls no more and lets what it holds end for this long; then
      // what is left is cancelled as a worker shutdown (the run is stopped and retried).
      shutdownGraceTime: config.RUNNER_DRAIN_SECONDS * 1000,
      // Heartbeats (and so cancellations) reach the server at least every second.
      maxHeartbeatThrottleInterval: Math.min(1000, config.RUN_HEARTBEAT_INTERVAL_MS),
      identity: `runner@${os.hostname()}:${process.pid}`,
    },
    logger,
  );
  // The runner says it is online while its worker runs (ReportRunner), and when it stops.
  const presence = new PresenceReporter({
    send: async (report, signal) => ({ everySeconds: (await executions.reportRunner(create(execution.ReportRunnerRequestSchema, report), { signal })).everySeconds }),
    runner: os.hostname(),
    slots: config.RUNNER_CONCURRENCY,
    busy: () => worker.inFlightActivities(),
    logger,
  });
  /** Resolves once the runs' places (processes, directories, uids) are cleared. */
  const runsCleared = () => Promise.all([sandbox.settled(), environments.builds.sandbox.settled()]).then(() => undefined);
  return { worker, pool, forkServer, memoryGroups, presence, runsCleared };
}

/** The runs' memory cgroups (sandboxed runs only), as SANDBOX_MEMORY_CGROUPS asks. */
async function memoryCgroupsOf(config: RunnerConfig, mode: 'on' | 'off', logger: Logger): Promise<MemoryCgroups | undefined> {
  if (mode !== 'on' || config.SANDBOX_MEMORY_CGROUPS === 'off') return undefined;
  try {
    const groups = await setUpMemoryCgroups();
    logger.info({ cgroup: groups.root, version: groups.version }, 'each run has one memory limit for all its processes');
    return groups;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    if (config.SANDBOX_MEMORY_CGROUPS === 'on') throw new Error(`SANDBOX_MEMORY_CGROUPS=on, but memory cgroups cannot be used: ${why}`);
    logger.warn({ err: why }, 'no memory cgroups: memory limits hold per process only (a script that forks may use more)');
    return undefined;
  }
}
