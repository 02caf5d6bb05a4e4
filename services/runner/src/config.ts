import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { baseConfigShape, ConfigError, keepOutOfLogs, parseConfig, port, runnerKeyConfigShape, runnerKeyDevSecret, runnerStopDefaults, secretValues } from '@gef/common';

const GiB = 1024 ** 3;
const TiB = 1024 ** 4;

/**
 * A size in bytes, positive and at most `max` (named in the refusal, so a value with a few
 * zeros too many fails at start and says what the bound is).
 */
const bytesAtMost = (max: number, fallback: number) =>
  z.coerce
    .number()
    .int()
    .positive()
    .max(max, `at most ${max / TiB >= 1 ? `${max / TiB} TiB` : `${max / GiB} GiB`} (${max} bytes)`)
    .default(fallback);

/** A cache's byte budget: 0 (keep only what runs use, and the latest) to 16 TiB. */
const cacheBytes = (fallback: number) =>
  z.coerce
    .number()
    .int()
    .min(0)
    .max(16 * TiB, `at most 16 TiB (${16 * TiB} bytes)`)
    .default(fallback);

/** A count, at least `min` and at most `max` (named in the refusal). */
const countAtMost = (min: number, max: number, fallback: number, why = '') =>
  z.coerce
    .number()
    .int()
    .min(min)
    .max(max, `at most ${max}${why}`)
    .default(fallback);

export const configShape = {
  ...baseConfigShape,
  METRICS_PORT: port(9104),
  ...runnerKeyConfigShape,
  SCRIPT_SERVICE_URL: z.string().url().default('http://127.0.0.1:50052'),
  EXECUTION_SERVICE_URL: z.string().url().default('http://127.0.0.1:50053'),
  GEF_DATA_DIR: z.string().min(1).default(path.resolve(__dirname, '../../../.data')),
  /**
   * The interpreter environments are made from. Scripts run as unprivileged users, so it
   * must be readable by them: the system interpreter by default when there is one (a
   * pyenv build under a private home is not).
   */
  PYTHON: z.string().min(1).default(fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'),
  /**
   * Runs (and builds) at once on this runner. A run mostly waits (on its script, on RPCs),
   * so the default is a few per core.
   */
  RUNNER_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(Math.max(4, 4 * os.availableParallelism())),
  /**
   * Python interpreters kept started in the sandbox, waiting for a run (0: each run starts
   * its own). Default: one per run that may go at once, at most two per core.
   */
  PYTHON_POOL_SIZE: z.coerce.number().int().min(0).max(256).optional(),
  /**
   * `on`: interpreters are forked from one that has imported the runtime shim already (a
   * few ms of CPU each instead of ~50 to start one and import it); `off`: each is started.
   */
  PYTHON_FORK_SERVER: z.enum(['on', 'off']).default('on'),
  /** One `pip install`; a day at most (a Node timer holds up to 24.8 days, and fires at once beyond). */
  PIP_TIMEOUT_SECONDS: countAtMost(1, 86_400, 900, ' (a day)'),
  /** What scripts get as API_URL: the gateway's public address. */
  API_URL: z.string().url().optional(),
  PUBLIC_URL: z.string().url().default('http://127.0.0.1:3000'),
  /**
   * Where the runner keeps environments, archives and run directories. Default
   * `<GEF_DATA_DIR>/runner` when scripts' users can reach it, else a directory of its own
   * under the system's temporary directory (see sandbox/runner-dirs.ts).
   */
  RUNNER_DATA_DIR: z.string().min(1).optional(),
  /**
   * What the runner's caches may take on disk, each (the least recently used entries are
   * removed first, never one a run in progress uses; one removed is made again when a run
   * needs it): downloaded archives (`archives/`), their extracted trees (`extracted/`), and
   * the Python environments (`environments/`).
   */
  RUNNER_ARCHIVES_MAX_BYTES: cacheBytes(GiB),
  RUNNER_EXTRACTED_MAX_BYTES: cacheBytes(5 * GiB),
  RUNNER_ENVIRONMENTS_MAX_BYTES: cacheBytes(20 * GiB),
  /** `on`: scripts run as unprivileged users (needs root); `off`: as the runner's user; `auto`: on when possible. */
  SANDBOX: z.enum(['auto', 'on', 'off']).default('auto'),
  /** The sandbox users: uid = gid = base + n, one per run at a time. */
  SANDBOX_UID_BASE: z.coerce.number().int().min(1000).max(4_000_000_000).default(900_000),
  SANDBOX_UID_COUNT: z.coerce.number().int().min(2).max(1_000_000).default(1000),
  /**
   * How many of those uids (the last ones) are for builds: pip runs the build code of the
   * packages a script requires, as a user of its own, never one a script runs as.
   */
  SANDBOX_BUILD_UID_COUNT: z.coerce.number().int().min(1).max(1000).default(16),
  /**
   * Where sandboxed scripts may connect (nftables rules on their uids): `internet` (the API
   * and public addresses, not this host or private networks), `api` (the API only), or
   * `open` (no rules).
   */
  SANDBOX_NETWORK: z.enum(['internet', 'api', 'open']).default('internet'),
  /** Default limits (a script's configuration sets memory and timeout itself). */
  SANDBOX_MEMORY_BYTES: bytesAtMost(TiB, 4 * GiB),
  /** Processes and threads of a run's user (RLIMIT_NPROC). */
  SANDBOX_MAX_PROCESSES: countAtMost(1, 65_536, 256),
  /** The kernel refuses more than its nr_open (1048576 by default) to every run. */
  SANDBOX_MAX_OPEN_FILES: countAtMost(1, 1_048_576, 1024, " (the kernel's default nr_open)"),
  SANDBOX_MAX_FILE_BYTES: bytesAtMost(TiB, 2 * GiB),
  /**
   * What a run's files may take on disk together (its directory and its files in the shared
   * temporary directories), checked every SANDBOX_DISK_CHECK_MS: past it the run is stopped.
   */
  SANDBOX_MAX_DISK_BYTES: bytesAtMost(16 * TiB, 10 * GiB),
  SANDBOX_DISK_CHECK_MS: z.coerce.number().int().min(100).max(60_000).default(1000),
  /**
   * One memory limit for all the processes of a run (a memory cgroup per run): `auto` when
   * the machine allows it, `on` (the runner does not start without), `off` (per-process
   * address-space limits only, which a script that forks multiplies).
   */
  SANDBOX_MEMORY_CGROUPS: z.enum(['auto', 'on', 'off']).default('auto'),
  /** Between SIGTERM and SIGKILL when a run is cancelled, stopped or times out. */
  SANDBOX_KILL_GRACE_SECONDS: z.coerce.number().min(0).max(300).default(runnerStopDefaults.killGraceSeconds),
  /**
   * A runner asked to stop (SIGTERM) takes no more runs or builds and gives those it holds
   * this long to end; what is still running then is stopped and retried on another runner.
   */
  RUNNER_DRAIN_SECONDS: z.coerce.number().min(0).max(86_400).default(runnerStopDefaults.drainSeconds),
  /** How often a running script's heartbeat (with its progress) is sent to Temporal. */
  RUN_HEARTBEAT_INTERVAL_MS: z.coerce.number().int().min(100).max(60_000).default(1000),
  /** How long a log line may wait to be sent with others. */
  RUN_LOG_FLUSH_MS: z.coerce.number().int().min(10).max(10_000).default(200),
  /** Log lines kept per attempt; later ones are dropped with a note. */
  RUN_LOG_MAX_LINES: countAtMost(100, 10_000_000, 1_000_000),
  /**
   * Bytes of log text kept per attempt (lines may be 32 KiB, so the line limit alone let an
   * attempt send ~32 GiB); the line past it and later ones are dropped with a note.
   */
  RUN_LOG_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024 ** 2, 'at least 1 MiB (1048576 bytes)')
    .max(4 * GiB, 'at most 4 GiB (4294967296 bytes)')
    .default(256 * 1024 ** 2),
};

/**
 * Variables passed on to venv and pip: what finds the interpreter (PATH, pyenv), the
 * locale, temporary directory, proxies and pip's own settings. Nothing else of the
 * runner's environment reaches them.
 */
const toolVariables = /^(PATH|HOME|LANG|LC_[A-Z]+|TMPDIR|PYENV_[A-Z_]+|PIP_[A-Z_]+|(HTTPS?|NO|ALL)_PROXY|(https?|no|all)_proxy|SSL_CERT_(FILE|DIR)|REQUESTS_CA_BUNDLE)$/;

export type RunnerConfig = ReturnType<typeof loadConfig>;

/**
 * The runner's configuration. It holds no database credentials: it reaches the platform
 * only through Temporal and the services' RPCs.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env) {
  const config = parseConfig(configShape, env, [runnerKeyDevSecret]);
  const toolEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && toolVariables.test(key)) toolEnv[key] = value;
  }
  toolEnv['PIP_DISABLE_PIP_VERSION_CHECK'] = '1';
  toolEnv['PIP_NO_INPUT'] = '1';
  // Index and proxy credentials never reach the runner's own log lines either.
  keepOutOfLogs(...secretValues(toolEnv));
  const pythonPoolSize = config.PYTHON_POOL_SIZE ?? Math.min(config.RUNNER_CONCURRENCY, 2 * os.availableParallelism());
  if (config.SANDBOX_BUILD_UID_COUNT >= config.SANDBOX_UID_COUNT) {
    throw new ConfigError([`SANDBOX_BUILD_UID_COUNT: must be smaller than SANDBOX_UID_COUNT (${config.SANDBOX_UID_COUNT}), which it is taken from`]);
  }
  if (config.GEF_ENV === 'production') {
    // What keeps a hostile script from the runner's tokens and from the services' ports.
    const unsafe = [
      config.SANDBOX === 'off' && "SANDBOX: 'off' is refused in production (scripts would run as the runner itself, beside every run's tokens)",
      config.SANDBOX_NETWORK === 'open' &&
        "SANDBOX_NETWORK: 'open' is refused in production (scripts would reach the database, Temporal and the services' ports)",
    ].filter((problem): problem is string => typeof problem === 'string');
    if (unsafe.length > 0) throw new ConfigError(unsafe);
  }
  const scriptUidCount = config.SANDBOX_UID_COUNT - config.SANDBOX_BUILD_UID_COUNT;
  /** The uids scripts run as, and those builds run as, from one range (first uid and count). */
  const sandboxUids = {
    scripts: { base: config.SANDBOX_UID_BASE, count: scriptUidCount },
    builds: { base: config.SANDBOX_UID_BASE + scriptUidCount, count: config.SANDBOX_BUILD_UID_COUNT },
  };
  return { ...config, toolEnv, apiUrl: config.API_URL ?? config.PUBLIC_URL, pythonPoolSize, sandboxUids };
}
