import Ajv, { type ValidateFunction } from 'ajv';
import Ajv2019 from 'ajv/dist/2019';
import Ajv2020 from 'ajv/dist/2020';

export type { ValidateFunction } from 'ajv';

/**
 * JSON Schemas as scripts declare them (`params_schema`): draft-07 by default, 2019-09 and
 * 2020-12 when the schema says so. Formats are not checked.
 */
const options = { strict: false, allErrors: false, validateFormats: false, logger: false } as const;
const engines = { draft7: new Ajv(options), draft2019: new Ajv2019(options), draft2020: new Ajv2020(options) };

function engineFor(schema: Record<string, unknown>) {
  const uri = typeof schema['$schema'] === 'string' ? schema['$schema'] : '';
  if (uri.includes('2020-12')) return engines.draft2020;
  if (uri.includes('2019-09')) return engines.draft2019;
  return engines.draft7;
}

/** A schema that does not compile; the message says why. */
export class InvalidJsonSchema extends Error {
  override readonly name = 'InvalidJsonSchema';
}

/** Compiles a schema (throws InvalidJsonSchema). `$schema` and `$id` are left out: a URI the engine does not know is no error. */
export function compileJsonSchema(schema: Record<string, unknown>): ValidateFunction {
  const { $schema: _ignored, $id: _id, ...body } = schema;
  try {
    return engineFor(schema).compile(body);
  } catch (err) {
    throw new InvalidJsonSchema(err instanceof Error ? err.message : String(err));
  }
}
