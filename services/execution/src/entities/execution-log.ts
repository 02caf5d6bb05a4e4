import { defineEntity, type InferEntity } from '@mikro-orm/core';

export const logLevels = ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'] as const;
export type LogLevel = (typeof logLevels)[number];

/**
 * One log line of an execution. `(execution_id, attempt, seq)` is unique: a line numbered at
 * its source is stored once however often it is delivered. Lines without a number (one line
 * posted over REST) have a null `seq`. The table's primary key is (execution_id, id): every
 * read names its execution (see migration 7); ids are unique on their own too (one sequence).
 */
export const ExecutionLogSchema = defineEntity({
  name: 'ExecutionLog',
  tableName: 'execution_log',
  properties: (p) => ({
    id: p.bigint('number').primary().autoincrement(),
    executionId: p.uuid().fieldName('execution_id'),
    attempt: p.integer().default(0),
    seq: p.integer().nullable(),
    level: p.string().length(16).$type<LogLevel>(),
    text: p.text(),
    registerDate: p.datetime().fieldName('register_date'),
  }),
});

export type ExecutionLog = InferEntity<typeof ExecutionLogSchema>;
