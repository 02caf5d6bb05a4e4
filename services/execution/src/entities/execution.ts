import { defineEntity, type InferEntity } from '@mikro-orm/core';

export const executionStatuses = ['PENDING', 'READY', 'RUNNING', 'FINISHED', 'FAILED', 'CANCELLING', 'CANCELLED'] as const;
export type ExecutionStatus = (typeof executionStatuses)[number];

/** One run of a script version by a user. */
export const ExecutionSchema = defineEntity({
  name: 'Execution',
  tableName: 'execution',
  properties: (p) => ({
    id: p.uuid().primary(),
    scriptId: p.uuid().fieldName('script_id'),
    userId: p.uuid().fieldName('user_id'),
    status: p.string().length(16).$type<ExecutionStatus>(),
    progress: p.double().$type<number>().default(0),
    params: p.json<Record<string, unknown>>(),
    results: p.json<unknown>().nullable(),
    startDate: p.datetime().fieldName('start_date'),
    endDate: p.datetime().nullable().fieldName('end_date'),
    updatedAt: p.datetime().fieldName('updated_at'),
    scriptVersion: p.integer().fieldName('script_version'),
    queuedAt: p.datetime().nullable().fieldName('queued_at'),
    attempt: p.integer().default(0),
    /** Whether the run holds one of its user's concurrency slots (READY until its workflow ends). */
    slotHeld: p.boolean().default(false).fieldName('slot_held'),
    /** The attempt a runner executes now; null when none does. */
    runnerAttempt: p.integer().nullable().fieldName('runner_attempt'),
  }),
});

export type Execution = InferEntity<typeof ExecutionSchema>;
