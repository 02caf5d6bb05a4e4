import path from 'node:path';
import { z } from 'zod';
import { baseConfigShape, databaseConfigShape, parseConfig, port, runnerKeyConfigShape, runnerKeyDevSecret, serviceKeyConfigShape, serviceKeyDevSecret } from '@gef/common';
import type { ArchiveLimits } from './archive/limits';

export const configShape = {
  ...baseConfigShape,
  PORT: port(50052),
  METRICS_PORT: port(9102),
  DATABASE_URL: z.string().url().default('postgres://postgres:postgres@127.0.0.1:5432/gef_script'),
  ...databaseConfigShape,
  ...serviceKeyConfigShape,
  ...runnerKeyConfigShape,
  USER_SERVICE_URL: z.string().url().default('http://127.0.0.1:50051'),
  GEF_DATA_DIR: z.string().min(1).default(path.resolve(__dirname, '../../../.data')),
  UPLOAD_LIMIT_BYTES: z.coerce.number().int().positive().default(50 * 1024 * 1024),
  ARCHIVE_INFLATED_LIMIT_BYTES: z.coerce.number().int().positive().default(500 * 1024 * 1024),
  ARCHIVE_MAX_MEMBERS: z.coerce.number().int().positive().default(10_000),
  ARCHIVE_CHECK_TIMEOUT_SECONDS: z.coerce.number().int().positive().default(120),
  /** Signs the build tokens runners append build log lines with (domain/build-token.ts). */
  BUILD_TOKEN_SECRET: z.string().min(16).default('gef-build-token-dev-secret'),
};

export type ScriptConfig = ReturnType<typeof loadConfig>;

/** The script service's configuration, from the environment. */
export function loadConfig(env: Record<string, string | undefined> = process.env) {
  return parseConfig(configShape, env, [{ name: 'BUILD_TOKEN_SECRET', devValue: 'gef-build-token-dev-secret' }, serviceKeyDevSecret, runnerKeyDevSecret]);
}

/** The archive checks' bounds from the configuration. */
export function archiveLimits(config: ScriptConfig): ArchiveLimits {
  return {
    maxCompressedBytes: config.UPLOAD_LIMIT_BYTES,
    maxInflatedBytes: config.ARCHIVE_INFLATED_LIMIT_BYTES,
    maxMembers: config.ARCHIVE_MAX_MEMBERS,
    timeoutMs: config.ARCHIVE_CHECK_TIMEOUT_SECONDS * 1000,
    maxConfigurationBytes: 1024 * 1024,
    maxRequirementsBytes: 64 * 1024,
  };
}

/** Where archives are stored. */
export const artifactsDir = (config: ScriptConfig) => path.join(path.resolve(config.GEF_DATA_DIR), 'artifacts');
