import { z } from 'zod';
import { baseConfigShape, databaseConfigShape, parseConfig, port, runnerKeyConfigShape, runnerKeyDevSecret, serviceKeyConfigShape, serviceKeyDevSecret } from '@gef/common';
import { apiLogDefaults } from './domain/deps';

export const configShape = {
  ...baseConfigShape,
  PORT: port(50053),
  METRICS_PORT: port(9103),
  DATABASE_URL: z.string().url().default('postgres://postgres:postgres@127.0.0.1:5432/gef_execution'),
  ...databaseConfigShape,
  ...serviceKeyConfigShape,
  ...runnerKeyConfigShape,
  USER_SERVICE_URL: z.string().url().default('http://127.0.0.1:50051'),
  SCRIPT_SERVICE_URL: z.string().url().default('http://127.0.0.1:50052'),
  EXECUTION_TOKEN_SECRET: z.string().min(16).default('gef-execution-token-dev-secret'),
  /** Runs a USER may have going at once; ADMIN and SUPERADMIN are unlimited. */
  MAX_CONCURRENT_EXECUTIONS: z.coerce.number().int().min(1).max(10_000).default(3),
  /** Runs of a USER that may wait for a slot at once (each holds a waiting workflow); more are 429. */
  MAX_WAITING_EXECUTIONS: z.coerce.number().int().min(1).max(100_000).default(500),
  /** A script's wall-clock timeout when its configuration.json sets none. */
  EXECUTION_DEFAULT_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(7 * 24 * 3600).default(3600),
  /** How long a runner may stay silent (no heartbeat) before its run moves to another runner. */
  RUNNER_HEARTBEAT_TIMEOUT_SECONDS: z.coerce.number().int().min(2).max(600).default(10),
  /** Runner attempts of a run before it ends FAILED. */
  EXECUTION_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(3),
  /** Time a runner may spend preparing (environment, archive) on top of the script's timeout. */
  RUNNER_PREPARE_TIMEOUT_SECONDS: z.coerce.number().int().min(60).max(24 * 3600).default(1800),
  /**
   * Log lines and bytes of text a run's script may append itself with its API_TOKEN
   * (`POST /execution/<id>/log`), over all its attempts: what it prints is held by the
   * runner's own limits (RUN_LOG_MAX_LINES, RUN_LOG_MAX_BYTES), which this path passes by.
   */
  API_LOG_MAX_LINES: z.coerce.number().int().min(100).max(100_000_000).default(apiLogDefaults.maxLines),
  API_LOG_MAX_BYTES: z.coerce.number().int().min(1024 ** 2).max(64 * 1024 ** 3).default(apiLogDefaults.maxBytes),
};

export type ExecutionConfig = ReturnType<typeof loadConfig>;

/** The execution service's configuration, from the environment. */
export function loadConfig(env: Record<string, string | undefined> = process.env) {
  return parseConfig(configShape, env, [{ name: 'EXECUTION_TOKEN_SECRET', devValue: 'gef-execution-token-dev-secret' }, serviceKeyDevSecret, runnerKeyDevSecret]);
}
