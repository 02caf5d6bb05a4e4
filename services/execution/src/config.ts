import { z } from 'zod';
import { baseConfigShape, parseConfig, port } from '@gef/common';

export const configShape = {
  ...baseConfigShape,
  PORT: port(50053),
  METRICS_PORT: port(9103),
  DATABASE_URL: z.string().url().default('postgres://postgres:postgres@127.0.0.1:5432/gef_execution'),
  USER_SERVICE_URL: z.string().url().default('http://127.0.0.1:50051'),
  SCRIPT_SERVICE_URL: z.string().url().default('http://127.0.0.1:50052'),
  EXECUTION_TOKEN_SECRET: z.string().min(16).default('gef-execution-token-dev-secret'),
};

export type ExecutionConfig = ReturnType<typeof loadConfig>;

/** The execution service's configuration, from the environment. */
export function loadConfig(env: Record<string, string | undefined> = process.env) {
  return parseConfig(configShape, env, [{ name: 'EXECUTION_TOKEN_SECRET', devValue: 'gef-execution-token-dev-secret' }]);
}
