import { defineEntity, type InferEntity } from '@mikro-orm/core';

/**
 * What running a script version needs, recorded when the first run of that version is
 * accepted: executions are pinned to a version, and runners read this instead of asking the
 * script service for a version that may have changed since.
 */
export const ScriptRunSpecSchema = defineEntity({
  name: 'ScriptRunSpec',
  tableName: 'script_run_spec',
  properties: (p) => ({
    scriptId: p.uuid().primary().fieldName('script_id'),
    version: p.integer().primary(),
    scriptUserId: p.uuid().fieldName('script_user_id'),
    digest: p.string().length(64),
    size: p.bigint('number'),
    runtime: p.string().length(32),
    environmentHash: p.string().length(64).fieldName('environment_hash'),
    requirements: p.text(),
    cpuLimit: p.double().$type<number>().fieldName('cpu_limit'),
    memoryLimit: p.bigint('number').fieldName('memory_limit'),
    timeout: p.integer(),
    createdAt: p.datetime().fieldName('created_at'),
  }),
});

export type ScriptRunSpec = InferEntity<typeof ScriptRunSpecSchema>;
