import type { Script } from '../entities/script';
import type { ScriptLog } from '../entities/script-log';

/** A script as answered, with its build log when asked for. */
export interface ScriptView {
  script: Script;
  logs?: ScriptLog[];
}
