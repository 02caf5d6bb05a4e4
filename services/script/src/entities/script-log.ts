import { defineEntity, type InferEntity } from '@mikro-orm/core';

/** One line of a script's build log. */
export const ScriptLogSchema = defineEntity({
  name: 'ScriptLog',
  tableName: 'script_log',
  properties: (p) => ({
    id: p.bigint('number').primary().autoincrement(),
    scriptId: p.uuid().fieldName('script_id'),
    /** The version whose build wrote it. */
    version: p.integer().nullable(),
    text: p.text(),
    /** The runner's attempt at the build and the line's number in its output (runners' lines only). */
    attempt: p.integer().nullable(),
    seq: p.integer().nullable(),
    /** The build's workflow run (runners' lines of runners that send it). */
    buildRun: p.uuid().fieldName('build_run').nullable(),
    registerDate: p.datetime().fieldName('register_date'),
  }),
});

export type ScriptLog = InferEntity<typeof ScriptLogSchema>;
