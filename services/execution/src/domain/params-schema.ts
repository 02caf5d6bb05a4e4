import { compileJsonSchema, InvalidArgument, type ValidateFunction } from '@gef/common';

/**
 * Run parameters against a script's `params_schema` (see compileJsonSchema). Compiled
 * validators are cached per script version (versions are immutable).
 */
const cache = new Map<string, ValidateFunction>();
const maxCached = 500;

function compile(key: string, schema: Record<string, unknown>): ValidateFunction {
  let validate = cache.get(key);
  if (validate) return validate;
  try {
    validate = compileJsonSchema(schema);
  } catch (err) {
    throw new InvalidArgument(`The script's params_schema is not a valid JSON Schema: ${err instanceof Error ? err.message : String(err)}`, 'invalid_params');
  }
  if (cache.size >= maxCached) cache.delete(cache.keys().next().value!);
  cache.set(key, validate);
  return validate;
}

/** Throws InvalidArgument with the schema error when the params do not satisfy the schema. */
export function validateParams(cacheKey: string, schema: Record<string, unknown> | undefined, params: Record<string, unknown>): void {
  if (!schema || Object.keys(schema).length === 0) return;
  const validate = compile(cacheKey, schema);
  if (validate(params)) return;
  const error = validate.errors?.[0];
  const where = error?.instancePath ? `params${error.instancePath.replace(/\//g, '.')}` : 'params';
  const message = error ? `${where} ${error.message ?? 'is invalid'}` : 'params do not match the script\'s params_schema';
  const extra = error?.keyword === 'additionalProperties' ? ` ('${String((error.params as { additionalProperty?: string }).additionalProperty)}')` : '';
  const allowed = error?.keyword === 'enum' ? ` (${((error.params as { allowedValues?: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v)).join(', ')})` : '';
  throw new InvalidArgument(`Invalid params: ${message}${extra}${allowed}`, 'invalid_params');
}
