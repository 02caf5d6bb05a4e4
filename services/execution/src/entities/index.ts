import { ExecutionSchema } from './execution';
import { ExecutionLogSchema } from './execution-log';
import { ScriptRunSpecSchema } from './script-run-spec';

/** Every entity of the execution service. */
export const entities = [ExecutionSchema, ExecutionLogSchema, ScriptRunSpecSchema];
