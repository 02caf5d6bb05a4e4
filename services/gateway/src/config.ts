import { z } from 'zod';
import { baseConfigShape, commaList, databaseConfigShape, parseConfig, port, serviceKeyConfigShape, serviceKeyDevSecret, type DevSecret } from '@gef/common';

/** A base URL without its trailing slash. */
const baseUrl = (fallback: string) =>
  z
    .url({ protocol: /^https?$/ })
    .default(fallback)
    .transform((u) => u.replace(/\/+$/, ''));

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** A rate limit written `<max>/<window seconds>`, e.g. `120/60`. */
const rateLimit = (fallback: string) =>
  z
    .string()
    .regex(/^\d{1,7}\/\d{1,7}$/, 'expected <max>/<window seconds>')
    .default(fallback)
    .transform((v) => {
      const [max, windowSeconds] = v.split('/').map(Number) as [number, number];
      return { max, windowSeconds: Math.max(1, windowSeconds) };
    });

/** The gateway's settings (docs/configuration.md). */
export const configShape = {
  ...baseConfigShape,
  PORT: port(3000),
  /**
   * Processes serving PORT together (Node's cluster; src/cluster.ts): 0 is one per core, 1
   * a single process. Where a platform runs one gateway per core already (replicas of one
   * core each), 1.
   */
  GATEWAY_WORKERS: z.coerce.number().int().min(0).max(64).default(0),
  DATABASE_URL: z.string().min(1).default('postgres://postgres:postgres@127.0.0.1:5432/gef_gateway'),
  ...databaseConfigShape,
  ...serviceKeyConfigShape,
  KEYCLOAK_URL: baseUrl('http://127.0.0.1:8080'),
  KEYCLOAK_REALM: z.string().min(1).default('gef'),
  KEYCLOAK_CLIENT_ID: z.string().min(1).default('gef-api'),
  /** The `iss` of the realm's tokens when Keycloak names itself by a public address (KC_HOSTNAME) unlike KEYCLOAK_URL. */
  KEYCLOAK_ISSUER: z.string().url().optional(),
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
  /** Express `trust proxy`: `false`, `true`, a hop count, or a comma list of addresses/subnets. */
  TRUST_PROXY: z.string().default('false'),
  /** Rate limits, as `<max>/<window seconds>`. */
  RATE_LIMIT_LOGIN_PER_CLIENT: rateLimit('600/60'),
  RATE_LIMIT_LOGIN_PER_ACCOUNT: rateLimit('120/60'),
  RATE_LIMIT_REFRESH_PER_CLIENT: rateLimit('600/60'),
  /** Refreshes of one login session of an account (the refresh token's `sub` and `sid`). */
  RATE_LIMIT_REFRESH_PER_SESSION: rateLimit('120/60'),
  RATE_LIMIT_REGISTER_PER_CLIENT: rateLimit('60/3600'),
  /** Registrations naming one e-mail address (taken or not). */
  RATE_LIMIT_REGISTER_PER_ACCOUNT: rateLimit('10/3600'),
  RATE_LIMIT_RECOVER_PER_CLIENT: rateLimit('30/3600'),
  RATE_LIMIT_RECOVER_PER_ACCOUNT: rateLimit('5/3600'),
  RATE_LIMIT_RUN_PER_ACCOUNT: rateLimit('600/60'),
  /** Runs from one address, whichever accounts send them (many users may share one address). */
  RATE_LIMIT_RUN_PER_CLIENT: rateLimit('1200/60'),
  /** Script uploads (POST /api/v1/script, PATCH with a file): each costs the script service seconds of CPU for a compressed archive. */
  RATE_LIMIT_UPLOAD_PER_ACCOUNT: rateLimit('30/60'),
  RATE_LIMIT_UPLOAD_PER_CLIENT: rateLimit('120/60'),
  /**
   * Event streams (`GET /api/v1/execution/{id}/events`) one user may hold open at once in
   * each gateway process; ADMIN and above get the second. Beyond, 429 `rate_limited`.
   */
  EVENT_STREAMS_PER_USER: z.coerce.number().int().min(1).max(100_000).default(20),
  EVENT_STREAMS_PER_ADMIN: z.coerce.number().int().min(1).max(100_000).default(100),
  /**
   * How long the caller's own profile (`GET /api/v1/user/me`) may be answered from the
   * gateway's memory; changes drop it at once. 0 turns the cache off.
   */
  PROFILE_CACHE_TTL_SECONDS: z.coerce.number().int().min(0).max(3600).default(30),
  /**
   * How long an execution (`GET /api/v1/execution/{id}`) may be answered from the
   * gateway's memory; every change drops it at once. 0 turns the cache off.
   */
  EXECUTION_CACHE_TTL_SECONDS: z.coerce.number().int().min(0).max(3600).default(30),
};

export type GatewayConfig = z.infer<z.ZodObject<typeof configShape>>;

/** Secrets that production refuses to run with while they hold these values. */
export const gatewayDevSecrets: DevSecret[] = [
  { name: 'EXECUTION_TOKEN_SECRET', devValue: 'gef-execution-token-dev-secret' },
  serviceKeyDevSecret,
];

/**
 * Reads the gateway's configuration. The only place `process.env` is read; tests pass
 * their own environment.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): GatewayConfig {
  return parseConfig(configShape, env, gatewayDevSecrets);
}
