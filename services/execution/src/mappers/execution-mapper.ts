import { create, fromJson, type JsonObject, type JsonValue } from '@bufbuild/protobuf';
import { timestampFromDate, ValueSchema } from '@bufbuild/protobuf/wkt';
import { execution } from '@gef/protos';
import type { Execution, ExecutionStatus } from '../entities/execution';

const statusToProto: Record<ExecutionStatus, execution.ExecutionStatus> = {
  PENDING: execution.ExecutionStatus.PENDING,
  READY: execution.ExecutionStatus.READY,
  RUNNING: execution.ExecutionStatus.RUNNING,
  FINISHED: execution.ExecutionStatus.FINISHED,
  FAILED: execution.ExecutionStatus.FAILED,
  CANCELLING: execution.ExecutionStatus.CANCELLING,
  CANCELLED: execution.ExecutionStatus.CANCELLED,
};

/** An execution entity as the Execution message. */
export function toExecutionMessage(e: Execution): execution.Execution {
  return create(execution.ExecutionSchema, {
    id: e.id,
    scriptId: e.scriptId,
    userId: e.userId,
    status: statusToProto[e.status],
    progress: Number(e.progress),
    params: e.params as JsonObject,
    ...(e.results !== null && e.results !== undefined ? { results: fromJson(ValueSchema, e.results as JsonValue) } : {}),
    startDate: timestampFromDate(e.startDate),
    ...(e.endDate ? { endDate: timestampFromDate(e.endDate) } : {}),
    updatedAt: timestampFromDate(e.updatedAt),
    scriptVersion: e.scriptVersion,
    ...(e.queuedAt ? { queuedAt: timestampFromDate(e.queuedAt) } : {}),
    attempt: e.attempt,
  });
}
