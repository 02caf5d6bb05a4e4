import { z } from 'zod';
import { baseConfigShape, commaList, parseConfig, port, type DevSecret } from '@gef/common';

/** A base URL without its trailing slash. */
const baseUrl = (fallback: string) =>
  z
    .url({ protocol: /^https?$/ })
    .default(fallback)
    .transform((u) => u.replace(/\/+$/, ''));

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** The gateway's settings (docs/configuration.md). */
export const configShape = {
  ...baseConfigShape,
  PORT: port(3000),
  DATABASE_URL: z.string().min(1).default('postgres://postgres:postgres@127.0.0.1:5432/gef_gateway'),
  KEYCLOAK_URL: baseUrl('http://127.0.0.1:8080'),
  KEYCLOAK_REALM: z.string().min(1).default('gef'),
  KEYCLOAK_CLIENT_ID: z.string().min(1).default('gef-api'),
  KEYCLOAK_CLIENT_SECRET: z.string().min(1).default('gef-api-dev-secret'),
  PUBLIC_URL: baseUrl('http://localhost:3000'),
  USER_SERVICE_URL: baseUrl('http://127.0.0.1:50051'),
  SCRIPT_SERVICE_URL: baseUrl('http://127.0.0.1:50052'),
  EXECUTION_SERVICE_URL: baseUrl('http://127.0.0.1:50053'),
  EXECUTION_TOKEN_SECRET: z.string().min(1).default('gef-execution-token-dev-secret'),
  /** Allowed CORS origins; `*` allows any. Empty: no cross-origin access. */
  CORS_ORIGINS: commaList,
  /** JSON bodies, compressed and inflated. */
  BODY_LIMIT_BYTES: positiveInt(1_048_576),
  UPLOAD_LIMIT_BYTES: positiveInt(52_428_800),
};

export type GatewayConfig = z.infer<z.ZodObject<typeof configShape>>;

/** Secrets that production refuses to run with while they hold these values. */
export const gatewayDevSecrets: DevSecret[] = [
  { name: 'KEYCLOAK_CLIENT_SECRET', devValue: 'gef-api-dev-secret' },
  { name: 'EXECUTION_TOKEN_SECRET', devValue: 'gef-execution-token-dev-secret' },
];

/**
 * Reads the gateway's configuration. The only place `process.env` is read; tests pass
 * their own environment.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): GatewayConfig {
  return parseConfig(configShape, env, gatewayDevSecrets);
}
