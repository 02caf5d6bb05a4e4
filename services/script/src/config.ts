import path from 'node:path';
import { z } from 'zod';
import { baseConfigShape, parseConfig, port } from '@gef/common';

export const configShape = {
  ...baseConfigShape,
  PORT: port(50052),
  METRICS_PORT: port(9102),
  DATABASE_URL: z.string().url().default('postgres://postgres:postgres@127.0.0.1:5432/gef_script'),
  USER_SERVICE_URL: z.string().url().default('http://127.0.0.1:50051'),
  GEF_DATA_DIR: z.string().min(1).default(path.resolve(__dirname, '../../../.data')),
  UPLOAD_LIMIT_BYTES: z.coerce.number().int().positive().default(50 * 1024 * 1024),
};

export type ScriptConfig = ReturnType<typeof loadConfig>;

/** The script service's configuration, from the environment. */
export function loadConfig(env: Record<string, string | undefined> = process.env) {
  return parseConfig(configShape, env);
}
