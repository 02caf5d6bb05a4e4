import vm from 'node:vm';
import Ajv, { type ValidateFunction } from 'ajv';
import Ajv2019 from 'ajv/dist/2019';
import Ajv2020 from 'ajv/dist/2020';
import { linearRegExp, forgetCompiledPatterns } from './linear-regexp';

export type { ValidateFunction } from 'ajv';

/**
 * JSON Schemas as scripts declare them (`params_schema`): draft-07 by default, 2019-09 and
 * 2020-12 when the schema says so. Formats are not checked. `pattern` and
 * `patternProperties` are matched in linear time (`linearRegExp`, RE2's engine), never by
 * JavaScript's backtracking RegExp, whose time a crafted pattern makes exponential.
 */
const options = { strict: false, allErrors: false, validateFormats: false, logger: false, code: { regExp: linearRegExp } } as const;
const newEngines = () => ({ draft7: new Ajv(options), draft2019: new Ajv2019(options), draft2020: new Ajv2020(options) });
let engines = newEngines();
let compiledSinceNew = 0;
/** How many compiles the engines serve before they are made anew. */
const enginesRenewedEvery = 100;

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

/**
 * How long a schema may take to compile. Ajv's time grows faster than a schema's size (a
 * thousand properties took 2 s, three thousand 12 s before failing), and configuration.json
 * may hold 1 MiB: real schemas compile in milliseconds.
 */
export const jsonSchemaCompileMs = 1000;

/**
 * Compiles a schema (throws InvalidJsonSchema, also for a pattern the linear engine does not
 * take: backreferences, lookahead, lookbehind, and for a schema that takes longer than
 * `jsonSchemaCompileMs` to compile). `$schema` and `$id` are left out: a URI the engine does
 * not know is no error.
 */
export function compileJsonSchema(schema: Record<string, unknown>): ValidateFunction {
  const { $schema: _ignored, $id: _id, ...body } = schema;
  // An engine keeps something of every schema it compiled (their `$id`s, values its code
  // shares): each compile is forgotten once done, and the engines are made anew now and
  // then, so a service compiling one schema per upload or version does not grow for good,
  // and one script's `$id` never clashes with another's. Validators compiled before keep working.
  if (++compiledSinceNew >= enginesRenewedEvery) {
    engines = newEngines();
    compiledSinceNew = 0;
  }
  const engine = engineFor(schema);
  try {
    const validate = runWithin(() => engine.compile(body), jsonSchemaCompileMs);
    engine.removeSchema();
    return validate;
  } catch (err) {
    engine.removeSchema();
    if (err instanceof JsonSchemaTimeout) {
      // Stopped halfway: the engines' shared state is not trusted any more.
      engines = newEngines();
      throw new InvalidJsonSchema(`the schema takes longer than ${jsonSchemaCompileMs} ms to compile: make it smaller`);
    }
    throw new InvalidJsonSchema(err instanceof Error ? err.message : String(err));
  }
}

/** A compilation or validation stopped at its time limit. */
export class JsonSchemaTimeout extends Error {
  override readonly name = 'JsonSchemaTimeout';
}

let sandbox: { context: vm.Context; script: vm.Script } | undefined;
interface Job {
  run: () => unknown;
  result?: unknown;
}

/**
 * Runs `run`, stopped after `ms` milliseconds (JsonSchemaTimeout): V8 ends the call at the
 * limit, in the same thread (no worker, nothing copied). Compiled patterns, whose caches the
 * stop may have left half-written, are compiled afresh afterwards.
 */
function runWithin<T>(run: () => T, ms: number): T {
  // The job is read once, before it runs: a nested call (none today) finds its own.
  sandbox ??= { context: vm.createContext({ job: undefined }), script: new vm.Script('{ const current = job; current.result = current.run(); }') };
  const job: Job = { run };
  const outer: unknown = sandbox.context['job'];
  sandbox.context['job'] = job;
  try {
    sandbox.script.runInContext(sandbox.context, { timeout: ms });
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') {
      forgetCompiledPatterns();
      throw new JsonSchemaTimeout(`stopped after ${ms} ms`);
    }
    throw err;
  } finally {
    sandbox.context['job'] = outer;
  }
  return job.result as T;
}

/**
 * Runs a compiled validator on `data`, stopped after `ms` milliseconds (JsonSchemaTimeout).
 * Linear-time patterns still cost the length of a string times the size of the pattern, and
 * other keywords more (`uniqueItems` compares every pair of items): a crafted schema with
 * a large input could hold the thread for minutes.
 */
export function validateWithin(validate: ValidateFunction, data: unknown, ms: number): boolean {
  return runWithin(() => validate(data), ms) === true;
}
