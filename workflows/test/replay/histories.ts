/**
 * The stored histories that `test/replay.test.ts` replays and `record.ts` writes:
 * `histories/<workflow>-<case>-<tag>.json`, each the JSON of a Temporal History (as
 * `historyToJSON` and `temporal workflow show --output json` write it).
 */
import fs from 'node:fs';
import path from 'node:path';
import * as workflows from '../../src/index';

export const historiesDir = path.join(__dirname, 'histories');

/** The workflow functions `src/index.ts` exports (its helpers are not async functions). */
export function exportedWorkflowNames(): string[] {
  return Object.entries(workflows)
    .filter(([, value]) => typeof value === 'function' && value.constructor.name === 'AsyncFunction')
    .map(([name]) => name)
    .sort();
}

/** The stored history files, by name. */
export function historyFiles(): string[] {
  if (!fs.existsSync(historiesDir)) return [];
  return fs
    .readdirSync(historiesDir)
    .filter((file) => file.endsWith('.json'))
    .sort();
}
