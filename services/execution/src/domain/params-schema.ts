import { compileJsonSchema, InvalidArgument, JsonSchemaTimeout, ResourceExhausted, validateWithin, type ValidateFunction } from '@gef/common';

/**
 * Run parameters against a script's `params_schema` (see compileJsonSchema: patterns match
 * in linear time). Compiled validators are cached per script version (versions are
 * immutable). A check is stopped after `paramsCheckMs` (the run is refused): a crafted
 * schema and params could otherwise hold the service's only thread for minutes.
 */
const cache = new Map<string, ValidateFunction | { invalid: string }>();
const maxCached = 500;

/** How long params may take to check against a schema (far above what real ones take: well under a millisecond). */
export const paramsCheckMs = 200;

/**
 * Compile time each user may spend, refilled evenly over a minute. Schemas are compiled once
 * per version and cached, but a user running more versions in turn than the cache holds,
 * each with a schema near the compile limit (a second), held the service's only thread
 * nearly all the time. Past their share, a run needing a new compile is refused for a few
 * seconds (429); runs of versions already compiled are not.
 */
export class CompileBudget {
  private readonly users = new Map<string, { left: number; at: number }>();

  constructor(
    private readonly msPerMinute = 5000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Throws ResourceExhausted (rate_limited) while the user's compile time is spent. */
  check(userId: string): void {
    const left = this.refill(userId);
    if (left > 0) return;
    const retryAfter = Math.max(1, Math.ceil(((1 - left) * 60_000) / this.msPerMinute / 1000));
    throw new ResourceExhausted(
      `This user's runs compiled too many params_schema of new script versions in the last minute; try again in ${retryAfter} s`,
      'rate_limited',
      { retry_after: retryAfter },
    );
  }

  /** Counts `ms` of compile time against the user. */
  charge(userId: string, ms: number): void {
    this.refill(userId);
    const state = this.users.get(userId) ?? { left: this.msPerMinute, at: this.now() };
    state.left -= ms;
    this.users.set(userId, state);
  }

  /** Users whose budget is not full (the others are forgotten). */
  get size(): number {
    return this.users.size;
  }

  private refill(userId: string): number {
    const now = this.now();
    if (this.users.size > 10_000) for (const id of [...this.users.keys()]) if (id !== userId) this.refill(id);
    const state = this.users.get(userId);
    if (!state) return this.msPerMinute;
    state.left = Math.min(this.msPerMinute, state.left + ((now - state.at) * this.msPerMinute) / 60_000);
    state.at = now;
    if (state.left >= this.msPerMinute) this.users.delete(userId);
    return state.left;
  }
}

const compileBudget = new CompileBudget();

/**
 * The version's compiled schema; a schema that does not compile is remembered too (compiling
 * it may take a second). Versions used again stay cached longest. A compile counts against
 * the caller's `CompileBudget` when one is given.
 */
function compile(key: string, schema: Record<string, unknown>, charged?: { userId: string; budget: CompileBudget }): ValidateFunction {
  let compiled = cache.get(key);
  if (compiled) {
    cache.delete(key);
    cache.set(key, compiled);
  } else {
    charged?.budget.check(charged.userId);
    const started = performance.now();
    try {
      compiled = compileJsonSchema(schema);
    } catch (err) {
      compiled = { invalid: `The script's params_schema is not a valid JSON Schema: ${err instanceof Error ? err.message : String(err)}` };
    }
    charged?.budget.charge(charged.userId, performance.now() - started);
    if (cache.size >= maxCached) cache.delete(cache.keys().next().value!);
    cache.set(key, compiled);
  }
  if ('invalid' in compiled) throw new InvalidArgument(compiled.invalid, 'invalid_params');
  return compiled;
}

/**
 * Throws InvalidArgument with the schema error when the params do not satisfy the schema.
 * `userId`: the caller, whose compile time is counted (`CompileBudget`; `budget` for tests).
 */
export function validateParams(
  cacheKey: string,
  schema: Record<string, unknown> | undefined,
  params: Record<string, unknown>,
  userId?: string,
  budget: CompileBudget = compileBudget,
): void {
  if (!schema || Object.keys(schema).length === 0) return;
  const validate = compile(cacheKey, schema, userId === undefined ? undefined : { userId, budget });
  let valid: boolean;
  try {
    valid = validateWithin(validate, params, paramsCheckMs);
  } catch (err) {
    if (!(err instanceof JsonSchemaTimeout)) throw err;
    throw new InvalidArgument(`Invalid params: they could not be checked against the script's params_schema within ${paramsCheckMs} ms`, 'invalid_params');
  }
  if (valid) return;
  const error = validate.errors?.[0];
  const where = error?.instancePath ? `params${error.instancePath.replace(/\//g, '.')}` : 'params';
  const message = error ? `${where} ${error.message ?? 'is invalid'}` : 'params do not match the script\'s params_schema';
  const extra = error?.keyword === 'additionalProperties' ? ` ('${String((error.params as { additionalProperty?: string }).additionalProperty)}')` : '';
  const allowed = error?.keyword === 'enum' ? ` (${((error.params as { allowedValues?: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v)).join(', ')})` : '';
  throw new InvalidArgument(`Invalid params: ${message}${extra}${allowed}`, 'invalid_params');
}
