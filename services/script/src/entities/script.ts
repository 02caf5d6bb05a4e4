import { defineEntity, type InferEntity } from '@mikro-orm/core';

export const scriptStatuses = ['PENDING', 'BUILDING', 'SUCCESS', 'FAIL'] as const;
export type ScriptStatus = (typeof scriptStatuses)[number];

/** A published script; `version` points at its current version. */
export const ScriptSchema = defineEntity({
  name: 'Script',
  tableName: 'script',
  properties: (p) => ({
    id: p.uuid().primary(),
    slug: p.string().length(80).unique(),
    name: p.string().length(1000),
    description: p.text().default(''),
    status: p.string().length(16).$type<ScriptStatus>(),
    public: p.boolean().default(false),
    userId: p.uuid().fieldName('user_id'),
    version: p.integer().default(0),
    runtime: p.string().length(64).default('python3'),
    cpuLimit: p.double().nullable().fieldName('cpu_limit'),
    memoryLimit: p.bigint('number').nullable().fieldName('memory_limit'),
    timeout: p.integer().nullable(),
    paramsSchema: p.json<Record<string, unknown>>().nullable().fieldName('params_schema'),
    createdAt: p.datetime().fieldName('created_at'),
    updatedAt: p.datetime().fieldName('updated_at'),
  }),
});

export type Script = InferEntity<typeof ScriptSchema>;
