import Ajv, { type ValidateFunction } from 'ajv';
import Ajv2019 from 'ajv/dist/2019';
import Ajv2020 from 'ajv/dist/2020';
import { InvalidArgument } from '@gef/common';

/**
 * Run parameters against a script's `params_schema` (JSON Schema draft-07 by default;
 * 2019-09 and 2020-12 when the schema says so). Compiled validators are cached per script
 * version (versions are immutable).
 */
const options = { strict: false, allErrors: false, validateFormats: false, logger: false } as const;
const engines = { draft7: new Ajv(options), draft2019: new Ajv2019(options), draft2020: new Ajv2020(options) };

const cache = new Map<string, ValidateFunction>();
const maxCached = 500;

function engineFor(schema: Record<string, unknown>) {
  const uri = typeof schema['$schema'] === 'string' ? schema['$schema'] : '';
  if (uri.includes('2020-12')) return engines.draft2020;
  if (uri.includes('2019-09')) return engines.draft2019;
  return engines.draft7;
}

function compile(key: string, schema: Record<string, unknown>): ValidateFunction {
  let validate = cache.get(key);
  if (validate) return validate;
  // A schema with `$schema` the engine does not know is compiled without it.
  const { $schema: _ignored, $id: _id, ...body } = schema;
  try {
    validate = engineFor(schema).compile(body);
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
