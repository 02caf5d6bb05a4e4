import path from 'node:path';
import { z } from 'zod';
import { baseConfigShape, parseConfig, port } from '@gef/common';

export const configShape = {
  ...baseConfigShape,
  METRICS_PORT: port(9104),
  SCRIPT_SERVICE_URL: z.string().url().default('http://127.0.0.1:50052'),
  EXECUTION_SERVICE_URL: z.string().url().default('http://127.0.0.1:50053'),
  GEF_DATA_DIR: z.string().min(1).default(path.resolve(__dirname, '../../../.data')),
  PYTHON: z.string().min(1).default('python3'),
  RUNNER_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(4),
};

export type RunnerConfig = ReturnType<typeof loadConfig>;

/**
 * The runner's configuration. It holds no database credentials: it reaches the platform
 * only through Temporal and the services' RPCs.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env) {
  return parseConfig(configShape, env);
}
