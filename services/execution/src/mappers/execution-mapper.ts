import { create, fromJson, type JsonObject, type JsonValue } from '@bufbuild/protobuf';
import { timestampFromDate, ValueSchema } from '@bufbuild/protobuf/wkt';
import { jsonTextDepthExceeds, rpcJsonDepth, rpcRecursionLimit } from '@gef/common';
import { execution } from '@gef/protos';
import { runExecutionWorkflowId } from '@gef/workflows';
import type { ExecutionStatus } from '../entities/execution';
import type { LogLevel } from '../entities/execution-log';
import type { LogRecord } from '../repositories/execution-log-repository';
import type { ExecutionRecord } from '../repositories/execution-repository';

const statusToProto: Record<ExecutionStatus, execution.ExecutionStatus> = {
  PENDING: execution.ExecutionStatus.PENDING,
  READY: execution.ExecutionStatus.READY,
  RUNNING: execution.ExecutionStatus.RUNNING,
  FINISHED: execution.ExecutionStatus.FINISHED,
  FAILED: execution.ExecutionStatus.FAILED,
  CANCELLING: execution.ExecutionStatus.CANCELLING,
  CANCELLED: execution.ExecutionStatus.CANCELLED,
};

const statusFromProtoMap = new Map(Object.entries(statusToProto).map(([name, value]) => [value, name as ExecutionStatus]));

export const toStatusMessage = (status: ExecutionStatus | undefined): execution.ExecutionStatus =>
  status ? statusToProto[status] : execution.ExecutionStatus.UNSPECIFIED;

/** A status from a request; undefined for UNSPECIFIED or unknown values. */
export const statusFromMessage = (status: execution.ExecutionStatus): ExecutionStatus | undefined => statusFromProtoMap.get(status);

const levelToProto: Record<LogLevel, execution.LogLevel> = {
  DEBUG: execution.LogLevel.DEBUG,
  INFO: execution.LogLevel.INFO,
  WARNING: execution.LogLevel.WARNING,
  ERROR: execution.LogLevel.ERROR,
  CRITICAL: execution.LogLevel.CRITICAL,
};

const levelFromProtoMap = new Map(Object.entries(levelToProto).map(([name, value]) => [value, name as LogLevel]));

/** A level from a request; undefined for UNSPECIFIED. */
export const levelFromMessage = (level: execution.LogLevel): LogLevel | undefined => levelFromProtoMap.get(level);

export function toLogMessage(log: LogRecord): execution.ExecutionLog {
  return create(execution.ExecutionLogSchema, {
    id: BigInt(log.id),
    text: log.text,
    level: levelToProto[log.level] ?? execution.LogLevel.INFO,
    registerDate: timestampFromDate(log.registerDate),
    executionId: log.executionId,
    attempt: log.attempt,
  });
}

/** Lines of one execution as columns (see ExecutionLogColumns). */
export function toLogColumns(logs: LogRecord[]): execution.ExecutionLogColumns {
  const n = logs.length;
  const ids = new Array<number>(n);
  const texts = new Array<string>(n);
  const levels = new Array<execution.LogLevel>(n);
  const registerMs = new Array<number>(n);
  const attempts = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const log = logs[i]!;
    ids[i] = log.id;
    texts[i] = log.text;
    levels[i] = levelToProto[log.level] ?? execution.LogLevel.INFO;
    registerMs[i] = log.registerDate.getTime();
    attempts[i] = log.attempt;
  }
  return create(execution.ExecutionLogColumnsSchema, { executionId: logs[0]?.executionId ?? '', ids, texts, levels, registerMs, attempts });
}

/**
 * Whether stored JSON text can be shown as it is: nested at most `rpcJsonDepth` levels.
 * Values are accepted up to `maxJsonValueDepth`; deeper ones were stored before that held.
 */
const carriable = (text: string) => text.length <= rpcJsonDepth || !jsonTextDepthExceeds(text, rpcJsonDepth);

/**
 * Results as JSON text to show: results stored nested too deep (see `carriable`) as a JSON
 * string of their text, so the execution, and every list holding it, stays readable.
 * Undefined for none (SQL or JSON null).
 */
function shownResults(text: string | null | undefined): string | undefined {
  if (text === undefined || text === null || text === 'null') return undefined;
  return carriable(text) ? text : JSON.stringify(text);
}

/** How an answer carries params and results. */
export interface MessageForm {
  /**
   * As JSON text (`params_json`, `results_json`), which costs each hop its bytes; otherwise
   * as Struct and Value messages, a message per JSON value (gateways of earlier versions).
   */
  jsonText?: boolean;
}

/**
 * An execution as the Execution message (params/results only when loaded). Params stored
 * nested too deep (none can be: the gateway always refused such bodies) are left out, as if
 * not loaded.
 */
export function toExecutionMessage(e: ExecutionRecord, logs?: LogRecord[], form: MessageForm = {}): execution.Execution {
  const params = e.paramsJson !== undefined && carriable(e.paramsJson) ? e.paramsJson : undefined;
  const results = shownResults(e.resultsJson);
  const json = form.jsonText
    ? { ...(params !== undefined ? { paramsJson: params } : {}), ...(results !== undefined ? { resultsJson: results } : {}) }
    : {
        ...(params !== undefined ? { params: JSON.parse(params) as JsonObject } : {}),
        ...(results !== undefined ? { results: fromJson(ValueSchema, JSON.parse(results) as JsonValue, { recursionLimit: rpcRecursionLimit }) } : {}),
      };
  return create(execution.ExecutionSchema, {
    id: e.id,
    scriptId: e.scriptId,
    userId: e.userId,
    status: statusToProto[e.status],
    progress: e.progress,
    ...json,
    startDate: timestampFromDate(e.startDate),
    ...(e.endDate ? { endDate: timestampFromDate(e.endDate) } : {}),
    updatedAt: timestampFromDate(e.updatedAt),
    scriptVersion: e.scriptVersion,
    ...(e.queuedAt ? { queuedAt: timestampFromDate(e.queuedAt) } : {}),
    attempt: e.attempt,
    workflowId: runExecutionWorkflowId(e.id),
    ...(logs ? { logs: logs.map(toLogMessage) } : {}),
  });
}
