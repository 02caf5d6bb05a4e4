import { defineEntity, type InferEntity } from '@mikro-orm/core';
import type { ScriptStatus } from './script';

/** One uploaded archive of a script: immutable, except for its build outcome. */
export const ScriptVersionSchema = defineEntity({
  name: 'ScriptVersion',
  tableName: 'script_version',
  properties: (p) => ({
    scriptId: p.uuid().primary().fieldName('script_id'),
    number: p.integer().primary(),
    /** SHA-256 of the archive, lower-case hex: its address in the artifact store. */
    digest: p.string().length(64),
    size: p.bigint('number'),
    configuration: p.json<Record<string, unknown>>(),
    fileName: p.string().length(1000).fieldName('file_name').default(''),
    requirements: p.text().default(''),
    status: p.string().length(16).$type<ScriptStatus>().default('PENDING'),
    /** Runtime + normalised requirements, once the build knows it. */
    environmentHash: p.string().length(64).nullable().fieldName('environment_hash'),
    createdAt: p.datetime().fieldName('created_at'),
    builtAt: p.datetime().nullable().fieldName('built_at'),
  }),
});

export type ScriptVersion = InferEntity<typeof ScriptVersionSchema>;
