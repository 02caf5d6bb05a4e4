import { ScriptSchema } from './script';
import { ScriptLogSchema } from './script-log';
import { ScriptVersionSchema } from './script-version';

/** Every entity of the script service. */
export const entities = [ScriptSchema, ScriptVersionSchema, ScriptLogSchema];
