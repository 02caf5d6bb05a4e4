import { compileJsonSchema, cutText, InvalidArgument, jsonDepthExceeds, lineBreakingText, maxJsonValueDepth, uuidPattern } from '@gef/common';
import { slugify } from './slug';
import { unstorableWhat } from '@gef/common';
import { unstorablePlace } from './storable-text';

/** The runtimes a script may declare. */
export const supportedRuntimes = ['python3'] as const;
export type Runtime = (typeof supportedRuntimes)[number];

/** What the platform reads from `configuration.json`; other keys are kept and ignored. */
export interface ScriptConfiguration {
  name: string;
  slug: string;
  description: string;
  runtime: Runtime;
  cpuLimit: number | null;
  /** Bytes. */
  memoryLimit: number | null;
  /** Seconds. */
  timeout: number | null;
  paramsSchema: Record<string, unknown> | null;
  /** The whole parsed object, as uploaded. */
  raw: Record<string, unknown>;
}

const maxNameLength = 1000;

const maxDescriptionLength = 100_000;

/**
 * The longest `timeout` (seconds): a week, the bound the execution service already puts on
 * its default timeout (EXECUTION_DEFAULT_TIMEOUT_SECONDS). Far inside the `integer` columns
 * that store it and the runner's timers, which stop at 2^31-1 ms (about 24.8 days).
 */
export const maxTimeoutSeconds = 7 * 24 * 3600;

/** How much of a key a refusal shows. */
const maxShownKey = 200;

const invalid = (message: string) => new InvalidArgument(`Invalid configuration.json: ${message}`, 'invalid_archive');

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A positive number, or null when absent. `max` keeps it inside what stores and uses it
 * (by default a whole number JSON and JavaScript agree on); `unit` follows it in the refusal.
 */
function positiveNumber(raw: Record<string, unknown>, key: string, integer: boolean, max = Number.MAX_SAFE_INTEGER, unit = ''): number | null {
  const value = raw[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw invalid(`'${key}' must be a positive ${integer ? 'integer' : 'number'}`);
  }
  if (value > max) throw invalid(`'${key}' must be at most ${max}${unit}`);
  return value;
}

/** Parses and checks the text of `configuration.json`. */
export function parseConfiguration(text: string): ScriptConfiguration {
  let raw: unknown;
  try {
    raw = JSON.parse(text.replace(/^\uFEFF/, ''), (_key, value: unknown) => {
      // 1e999 parses as Infinity, which JSON cannot store (it would come back as null).
      if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('a number too large to represent');
      return value;
    });
  } catch (err) {
    throw invalid(`not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!isObject(raw)) throw invalid('must be a JSON object');
  // Every key and string is stored (the whole object as jsonb), so all of them are checked.
  const unstorable = unstorablePlace(raw);
  if (unstorable !== undefined) throw invalid(`${unstorable} holds ${unstorableWhat}`);
  // params_schema crosses the RPCs as a google.protobuf.Struct, which decodes only so deep:
  // one nested deeper was stored and then broke every list and read holding the script.
  // Every kept value is held to the bound of run params and results.
  for (const [key, value] of Object.entries(raw)) {
    if (jsonDepthExceeds(value, maxJsonValueDepth)) {
      throw invalid(`'${key.length > maxShownKey ? `${cutText(key, maxShownKey)}…` : key}' is nested deeper than ${maxJsonValueDepth} levels of objects and arrays`);
    }
  }

  if (typeof raw['name'] !== 'string' || raw['name'].trim() === '') throw invalid("'name' is required");
  const name = raw['name'].trim();
  if (name.length > maxNameLength) throw invalid(`'name' is longer than ${maxNameLength} characters`);
  // The name reaches other users' e-mails (a run of a public script) and logs: one line.
  if (lineBreakingText.test(name)) throw invalid("'name' must not hold control characters or line breaks");
  const slug = slugify(name);
  if (slug === '') throw invalid("'name' must contain a letter or a digit");
  // Scripts are addressed by id or slug, and a UUID is read as an id: such a slug would name nothing.
  if (uuidPattern.test(slug)) throw invalid(`'name' gives the slug ${slug}, which reads as a script id; choose another name`);

  const description = raw['description'] ?? '';
  if (typeof description !== 'string') throw invalid("'description' must be a string");
  if (description.length > maxDescriptionLength) throw invalid(`'description' is longer than ${maxDescriptionLength} characters`);

  const runtime = raw['runtime'] ?? 'python3';
  if (typeof runtime !== 'string' || !(supportedRuntimes as readonly string[]).includes(runtime.trim().toLowerCase())) {
    throw invalid(`unsupported runtime ${JSON.stringify(runtime)} (supported: ${supportedRuntimes.join(', ')})`);
  }

  const paramsSchema = raw['params_schema'] ?? null;
  if (paramsSchema !== null && !isObject(paramsSchema)) throw invalid("'params_schema' must be a JSON object");
  if (paramsSchema !== null) {
    // Checked here, at upload, rather than refusing every run of the script later.
    try {
      compileJsonSchema(paramsSchema);
    } catch (err) {
      throw invalid(`'params_schema' is not a valid JSON Schema: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  return {
    name,
    slug,
    description,
    runtime: runtime.trim().toLowerCase() as Runtime,
    cpuLimit: positiveNumber(raw, 'cpu_limit', false),
    memoryLimit: positiveNumber(raw, 'memory_limit', true),
    timeout: positiveNumber(raw, 'timeout', true, maxTimeoutSeconds, ` seconds (${maxTimeoutSeconds / (24 * 3600)} days)`),
    paramsSchema,
    raw,
  };
}
