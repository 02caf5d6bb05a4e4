import { compileJsonSchema, InvalidArgument, JsonSchemaTimeout, validateWithin, type ValidateFunction } from '@gef/common';

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

/** The version's compiled schema; a schema that does not compile is remembered too (compiling it may take a second). */
function compile(key: string, schema: Record<string, unknown>): ValidateFunction {
  let compiled = cache.get(key);
  if (!compiled) {
    try {
      compiled = compileJsonSchema(schema);
    } catch (err) {
      compiled = { invalid: `The script's params_schema is not a valid JSON Schema: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (cache.size >= maxCached) cache.delete(cache.keys().next().value!);
    cache.set(key, compiled);
  }
  if ('invalid' in compiled) throw new InvalidArgument(compiled.invalid, 'invalid_params');
  return compiled;
}

/** Throws InvalidArgument with the schema error when the params do not satisfy the schema. */
export function validateParams(cacheKey: string, schema: Record<string, unknown> | undefined, params: Record<string, unknown>): void {
  if (!schema || Object.keys(schema).length === 0) return;
  const validate = compile(cacheKey, schema);
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
