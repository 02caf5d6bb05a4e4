import type { ExecutionStatus } from '../entities/execution';

/** Statuses that never change again. */
export const terminalStatuses: readonly ExecutionStatus[] = ['FINISHED', 'FAILED', 'CANCELLED'];

export const isTerminal = (status: ExecutionStatus): boolean => terminalStatuses.includes(status);

/** Not started yet: a cancel ends these at once. */
export const notStartedStatuses: readonly ExecutionStatus[] = ['PENDING', 'READY'];

/** SQL list of the terminal statuses, for `status in (…)`. */
export const terminalSql = terminalStatuses.map((s) => `'${s}'`).join(', ');
