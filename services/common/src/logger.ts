import { types } from 'node:util';
import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/** Keys whose values never reach a log line, matched without regard to case. */
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

/** What a redacted value is logged as. */
export const censor = '[redacted]';

const sensitive = new Set(redactedKeys.map((k) => k.toLowerCase()));

/** How deep values are searched: objects deeper down are logged as `[too deep]`. */
const maxDepth = 8;

/** An error of this realm or another (errors made in Temporal's workflow sandbox). */
const isError = (value: object): value is Error => value instanceof Error || types.isNativeError(value);

/** Like an error to pino's serializer (a message and a stack), as a DOMException of another realm. */
const isErrorLike = (value: object): value is Error => typeof (value as Error).message === 'string' && typeof (value as Error).stack === 'string';

/**
 * `value` with the values of sensitive keys (`redactedKeys`) replaced by `censor`, at any
 * depth up to `maxDepth`: in plain objects, arrays, class instances (as JSON would write
 * them: their own enumerable properties, or what their `toJSON` returns) and errors (their
 * properties and an AggregateError's errors). A value met again inside itself is
 * `[Circular]`. What holds no such key is returned as it is, not copied (most log lines: one
 * pass over their keys); only the objects on the way to a sensitive key are copied, so the
 * caller's objects never change. Typed arrays and buffers are left as they are.
 */
export function censorSecrets<T>(value: T, depth = 0, path: object[] = []): T {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return value;
  if (depth > maxDepth) return '[too deep]' as T;
  if (path.includes(value)) return '[Circular]' as T;
  path.push(value);
  try {
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i];
        const next = censorSecrets(item, depth + 1, path);
        if (next !== item) (copy ??= value.slice())[i] = next;
      }
      return (copy ?? value) as T;
    }
    if (isError(value)) return censorError(value, depth, path) as T;
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      const json: unknown = toJSON.call(value);
      if (json !== value) {
        const censored = censorSecrets(json, depth, path);
        return (censored === json ? value : censored) as T;
      }
    } else if (isErrorLike(value)) {
      return censorError(value, depth, path) as T;
    }
    return censorFields(value as Record<string, unknown>, depth, path) as T;
  } finally {
    path.pop();
  }
}

/** The shortest configured value `keepOutOfLogs` masks: a shorter one would mangle ordinary words. */
export const minSecretLength = 12;

/** The process's secret values as they may appear in a line (raw and JSON-escaped), longest first. */
let secretTexts: string[] = [];

/**
 * Secret values (the process's configured secrets: `parseConfig` passes them) that never
 * reach a log line, wherever they appear in it: a message's own text, a `%s`, an error's
 * message, a child logger's own formatters. Values shorter than `minSecretLength` are not
 * masked.
 */
export function keepOutOfLogs(...values: Array<string | undefined>): void {
  const next = new Set(secretTexts);
  for (const value of values) {
    if (!value || value.length < minSecretLength) continue;
    next.add(value);
    next.add(JSON.stringify(value).slice(1, -1));
  }
  // Longest first, so a secret holding a shorter one is masked whole.
  secretTexts = [...next].sort((a, b) => b.length - a.length);
}

/**
 * A signed JWT (access, refresh, execution and build tokens alike): its header and payload
 * are base64url JSON objects, so both begin `eyJ`.
 */
const jwtText = /(?<![\w-])eyJ[\w-]{6,}\.eyJ[\w-]{6,}\.[\w-]+/g;

/**
 * A written line with every JWT and every value given to `keepOutOfLogs` replaced by
 * `censor`: the last pass over what a logger writes, after the key-based censoring of its
 * fields. A line holding neither costs a few `includes`.
 */
export function maskSecretText(line: string): string {
  let out = line.includes('eyJ') ? line.replace(jwtText, censor) : line;
  for (const secret of secretTexts) {
    if (out.includes(secret)) out = out.split(secret).join(censor);
  }
  return out;
}

/** An object's own enumerable fields, censored; the object itself when none changed. */
function censorFields(fields: Record<string, unknown>, depth: number, path: object[]): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(fields)) {
    const item = fields[key];
    const next = sensitive.has(key.toLowerCase()) ? censor : censorField(item, depth + 1, path);
    if (next !== item) (copy ??= { ...fields })[key] = next;
  }
  return copy ?? fields;
}

/** A field's value, censored; one that cannot even be searched (a throwing getter or `toJSON`) is left out. */
function censorField(value: unknown, depth: number, path: object[]): unknown {
  try {
    return censorSecrets(value, depth, path);
  } catch (err) {
    return `[left out: ${err instanceof Error ? err.message : String(err)}]`;
  }
}

/**
 * A PostgreSQL error: pg's own, or the ORM's exception made from it, which carries its fields.
 * The ORM's message begins with the statement it ran, every value written into it (a run's
 * params, a script's requirements with their index credentials, log lines), then ` - ` and
 * what the database said; its `detail` may quote a value too (`Key (email)=(…)`).
 */
const isDatabaseError = (error: Error): boolean =>
  typeof (error as { severity?: unknown }).severity === 'string' && typeof (error as { routine?: unknown }).routine === 'string';

/** What the database said, without the statement the ORM writes in front of it. */
const databaseMessage = (message: string): string => {
  const at = message.lastIndexOf(' - ');
  return at >= 0 ? message.slice(at + 3) : message;
};

/** A line of a stack trace: `    at f (file:1:2)`, `    at file:1:2`, `    at new Promise (<anonymous>)`. */
const frameLine = /^\s+at .*(?::\d+:\d+\)?|\((?:native|<anonymous>)\))$/;

/** The fields of a database error that name what failed without quoting values. */
const databaseFields = ['code', 'severity', 'constraint', 'table', 'column', 'schema', 'dataType', 'routine'];

/** A database error as logged: its type, the database's message, its naming fields and the stack's frames. */
function withoutStatement(error: Error): Record<string, unknown> {
  const message = databaseMessage(error.message);
  // Only the stack's frames: its first lines repeat the message, statement and all, and the
  // ORM appends the driver's stack, message included, keeping each line that begins `at`
  // (a value in the statement may hold one). A line of the message is no frame.
  const stack = typeof error.stack === 'string' ? error.stack : '';
  const frames = stack.split('\n').filter((line) => frameLine.test(line) && !error.message.includes(line.trim()));
  const copy: Record<string, unknown> = {};
  const hidden = { constructor: error.constructor, name: error.name, message, stack: [`${error.name}: ${message}`, ...frames].join('\n') };
  for (const [key, value] of Object.entries(hidden)) Object.defineProperty(copy, key, { value, enumerable: false, writable: true, configurable: true });
  for (const key of databaseFields) {
    const value = (error as unknown as Record<string, unknown>)[key];
    if (typeof value === 'string') copy[key] = value;
  }
  return copy;
}

/**
 * An error as one line of text for a log field (`err: describeError(err)`), as `String(err)`
 * writes it, a database error without its statement (see `isDatabaseError`).
 */
export function describeError(err: unknown): string {
  if (err instanceof Error && isDatabaseError(err)) return `${err.name}: ${databaseMessage(err.message)}`;
  return String(err);
}

/**
 * An error whose fields (or an AggregateError's errors) hold a secret becomes a plain copy
 * that pino's error serializer writes as it would the error (its type through `constructor`,
 * message, stack, causes and errors; those not enumerable, as on the error), fields censored.
 */
function censorError(error: Error, depth: number, path: object[]): Error | Record<string, unknown> {
  if (isDatabaseError(error)) return withoutStatement(error);
  const fields = { ...error } as Record<string, unknown>;
  const censored = censorFields(fields, depth, path);
  const errors = (error as { errors?: unknown }).errors;
  const censoredErrors = Array.isArray(errors) ? censorSecrets(errors, depth + 1, path) : errors;
  if (censored === fields && censoredErrors === errors) return error;
  const copy: Record<string, unknown> = {};
  const hidden = { constructor: error.constructor, name: error.name, message: error.message, stack: error.stack, cause: error.cause, errors: censoredErrors };
  for (const [key, value] of Object.entries(hidden)) {
    if (value !== undefined && !Object.prototype.propertyIsEnumerable.call(error, key)) {
      Object.defineProperty(copy, key, { value, enumerable: false, writable: true, configurable: true });
    }
  }
  return Object.assign(copy, censored);
}

/**
 * A log line's fields or a child's bindings, censored as pino writes them: key by key,
 * whatever a `toJSON` of theirs says.
 */
function censorLine<T>(fields: T): T {
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields) || isError(fields)) return censorField(fields, 0, []) as T;
  return censorFields(fields as Record<string, unknown>, 0, [fields]) as T;
}

/**
 * The process logger: JSON lines on stdout (or `destination`), secrets censored in all it
 * writes: each line's fields, the values a message interpolates (`%o`, `%j`), and the
 * bindings of the logger and of its children (`child`, `setBindings`), by key; then, in the
 * whole written line, JWTs and the configured secret values (`maskSecretText`). Censoring by key in
 * one pass costs a line about a microsecond; pino's path redaction for the same keys, with
 * the wildcards it needs to reach nested ones, cost 70-100 µs a line: a tenth of a cached
 * read's CPU in the gateway, whose access log writes a line per request.
 */
export function createLogger(service: string, level = 'info', destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    name: service,
    level,
    base: { service },
    formatters: { log: censorLine, bindings: censorLine },
    hooks: {
      logMethod(args, method) {
        // The first argument goes through the log formatter; pino writes the others into the
        // message (an object message as JSON, the rest interpolated).
        for (let i = 1; i < args.length; i++) args[i] = censorField(args[i], 0, []);
        return method.apply(this, args);
      },
      streamWrite: maskSecretText,
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const root = destination ? pino(options, destination) : pino(options);
  // A child's bindings skip the root's bindings formatter; children are made from the root
  // (and from each other) by prototype, so these two reach every one of them.
  const proto = Object.getPrototypeOf(root) as { child: (bindings: pino.Bindings, options?: pino.ChildLoggerOptions) => Logger; setBindings: (bindings: pino.Bindings) => void };
  Object.assign(root, {
    child(this: Logger, bindings: pino.Bindings, childOptions?: pino.ChildLoggerOptions): Logger {
      return proto.child.call(this, censorLine(bindings), childOptions);
    },
    setBindings(this: Logger, bindings: pino.Bindings): void {
      proto.setBindings.call(this, censorLine(bindings));
    },
  });
  return root;
}
