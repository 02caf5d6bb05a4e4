import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/** Keys whose values never reach a log line. */
export const redactedKeys = [
  'password',
  'new_password',
  'old_password',
  'repeatPassword',
  'token',
  'access_token',
  'refresh_token',
  'client_secret',
  'authorization',
  'cookie',
  'DATABASE_URL',
  'KEYCLOAK_CLIENT_SECRET',
  'GEF_ADMIN_PASSWORD',
  'EXECUTION_TOKEN_SECRET',
  'BUILD_TOKEN_SECRET',
];

const redactPaths = redactedKeys.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `req.headers.${k.toLowerCase()}`]);

/** The process logger: JSON lines on stdout, secrets redacted. */
export function createLogger(service: string, level = 'info'): Logger {
  return pino({
    name: service,
    level,
    base: { service },
    redact: { paths: redactPaths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
