import { z } from 'zod';
import { keepOutOfLogs, redactedKeys } from './logger';

/** The environments a process can run in. Production refuses development secrets. */
export const gefEnvSchema = z.enum(['development', 'test', 'production']);
export type GefEnv = z.infer<typeof gefEnvSchema>;

/** A TCP port, given as a string in the environment. */
export const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);

/** Settings every process shares. */
export const baseConfigShape = {
  GEF_ENV: gefEnvSchema.default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  HOST: z.string().min(1).default('127.0.0.1'),
  TEMPORAL_ADDRESS: z.string().min(1).default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
};

/**
 * Limits the database holds a process's connections to (`DatabaseTimeouts`):
 * a statement running, or a transaction left open idle, longer than this is ended by the
 * database, so a stuck request cannot hold locks and a pooled connection for good. 0 sends
 * none (a pooler that refuses start-up parameters it does not know: set the database's own).
 * A statement's 25 s are within the 30 s a caller waits for an RPC's answer (`clients.ts`):
 * no statement goes on for a request whose caller has given up.
 */
export const databaseConfigShape = {
  DB_STATEMENT_TIMEOUT_SECONDS: z.coerce.number().int().min(0).max(24 * 3600).default(25),
  DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS: z.coerce.number().int().min(0).max(24 * 3600).default(60),
};

/**
 * How long one statement may run (a lock waited for included), and how long a transaction
 * may stay open with nothing running in it, before the database ends it. A request or
 * activity stuck on the database then fails (503, retried) rather than holding its locks
 * and a pooled connection for good.
 */
export interface DatabaseTimeouts {
  statementSeconds: number;
  idleInTransactionSeconds: number;
}

/** The database limits a process's settings (`databaseConfigShape`) give. */
export function databaseTimeouts(config: { DB_STATEMENT_TIMEOUT_SECONDS: number; DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS: number }): DatabaseTimeouts {
  return { statementSeconds: config.DB_STATEMENT_TIMEOUT_SECONDS, idleInTransactionSeconds: config.DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS };
}

/**
 * `timeouts` as node-postgres connection settings (milliseconds), sent as start-up
 * parameters: no round trip of their own. A limit of 0 is not sent.
 */
export function connectionLimits(timeouts: DatabaseTimeouts): { statement_timeout?: number; idle_in_transaction_session_timeout?: number } {
  return {
    ...(timeouts.statementSeconds > 0 ? { statement_timeout: timeouts.statementSeconds * 1000 } : {}),
    ...(timeouts.idleInTransactionSeconds > 0 ? { idle_in_transaction_session_timeout: timeouts.idleInTransactionSeconds * 1000 } : {}),
  };
}

/** Thrown when the environment does not satisfy a process's schema. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Secrets with development defaults. A production process refuses to start while any of
 * them still holds its development value or is empty.
 */
export interface DevSecret {
  name: string;
  devValue: string;
}

/**
 * Parses the environment with a zod object schema, once. The only place `process.env` is
 * read is the caller's `config.ts`, which passes it here.
 */
export function parseConfig<S extends z.ZodRawShape>(
  shape: S,
  env: Record<string, string | undefined>,
  devSecrets: DevSecret[] = [],
): z.infer<z.ZodObject<S>> {
  const schema = z.object(shape);
  // Empty strings mean "not set", so defaults apply.
  const cleaned: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && value !== '') cleaned[key] = value;
  }
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`));
  }
  const config = result.data as Record<string, unknown>;
  if (config['GEF_ENV'] === 'production') {
    // As the setting is read: trimmed, and any item of a comma list (keys in rotation).
    const isDevelopment = (s: DevSecret) => {
      const given = cleaned[s.name]?.trim();
      return !given || given === s.devValue || commaItems(given).includes(s.devValue);
    };
    const weak = devSecrets.filter(isDevelopment).map((s) => s.name);
    if (weak.length > 0) {
      throw new ConfigError(weak.map((name) => `${name}: must be set to a real secret in production`));
    }
  }
  keepOutOfLogs(...secretValues(config));
  return result.data;
}

const secretNames = new Set(redactedKeys.map((k) => k.toUpperCase()));
const secretName = /SECRET|PASSWORD|PASSPHRASE|PRIVATE_KEY|API_KEY/i;
const notSecretItself = /_(URL|FILE|PATH|LENGTH|SECONDS|MINUTES|HOURS|DAYS)$/i;

/** The secrets among parsed settings: those named as secrets, and the passwords in URLs. */
export function secretValues(config: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(config)) {
    if (typeof value !== 'string') continue;
    // PASSWORD_LINK_URL names a page, not a secret: a setting for a URL, file or amount is one
    // only through the password in it.
    if (secretNames.has(key.toUpperCase()) || (secretName.test(key) && !notSecretItself.test(key))) out.push(value);
    const password = urlPassword(value);
    if (password) out.push(password, decodedOr(password));
  }
  return out;
}

function decodedOr(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The password of a URL with credentials (as written in it), or undefined. */
function urlPassword(value: string): string | undefined {
  if (!value.includes('@') || !value.includes('://')) return undefined;
  try {
    return new URL(value).password || undefined;
  } catch {
    return undefined;
  }
}

/** The items of a comma-separated list, trimmed, empty ones dropped. */
export function commaItems(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
}

/** Reads a comma-separated list. */
export const commaList = z.string().default('').transform(commaItems);
