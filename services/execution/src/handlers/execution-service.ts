import { ConnectError, type ServiceImpl } from '@connectrpc/connect';
import { create, toJson } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate, ValueSchema } from '@bufbuild/protobuf/wkt';
import { GefError, InvalidArgument, jsonTextDepthExceeds, maxJsonValueDepth, toConnectError } from '@gef/common';
import { execution } from '@gef/protos';
import type { ExecutionDeps } from '../domain/deps';
import { appendExecutionLogs, cancelExecution, updateExecution, type ExecutionChanges } from '../domain/execution-changes';
import { getExecution, listExecutionLogs, listExecutions } from '../domain/execution-reads';
import type { NewLogLine } from '../domain/log-lines';
import { runScript } from '../domain/run-script';
import { completeAttempt, startAttempt } from '../domain/runner-attempts';
import { reportRunner } from '../domain/runner-presence';
import type { ExecutionEvents } from '../events/execution-events';
import { watchChanges } from '../events/watch-changes';
import { watchExecution, type WatchEvent } from '../events/watch-execution';
import { actorFromCaller } from '../mappers/caller-mapper';
import { levelFromMessage, statusFromMessage, toExecutionMessage, toLogColumns, toLogMessage, toStatusMessage, type MessageForm } from '../mappers/execution-mapper';

export interface ExecutionServiceDeps extends ExecutionDeps {
  events: ExecutionEvents;
}

function linesOf(lines: execution.LogLine[]): NewLogLine[] {
  return lines.map((l) => {
    const level = levelFromMessage(l.level);
    if (!level) throw new InvalidArgument('Each log line needs a level: DEBUG, INFO, WARNING, ERROR or CRITICAL', 'invalid_argument');
    return { text: l.text, level, seq: l.seq ?? null };
  });
}

const dateOf = (t: { seconds: bigint; nanos: number } | undefined) => (t ? timestampDate(t as Parameters<typeof timestampDate>[0]) : undefined);

/**
 * A request's JSON text (`params_json`, `results_json`) as a value: text that is not JSON is
 * InvalidArgument. Its depth and size are checked where the value is used.
 */
function parsedJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new InvalidArgument(`${what} must be JSON text`, 'invalid_argument');
  }
}

/** The run's params of a request: `params_json` when set, else the Struct. */
function paramsOf(req: execution.RunScriptRequest): Record<string, unknown> {
  if (req.paramsJson === '') return (req.params ?? {}) as Record<string, unknown>;
  // Before parsing: a text nested deeper than any stored value could costs no stack.
  if (jsonTextDepthExceeds(req.paramsJson, maxJsonValueDepth)) throw new InvalidArgument(`params are nested deeper than ${maxJsonValueDepth} levels of objects and arrays`, 'invalid_argument');
  const params = parsedJson(req.paramsJson, 'params');
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new InvalidArgument('params must be a JSON object', 'invalid_argument');
  return params as Record<string, unknown>;
}

/** The results of a request: `results_json` when set, else the Value; undefined when neither is. */
function resultsOf(req: execution.UpdateExecutionRequest): { value: unknown } | undefined {
  if (req.resultsJson !== undefined) {
    if (jsonTextDepthExceeds(req.resultsJson, maxJsonValueDepth)) throw new InvalidArgument(`results are nested deeper than ${maxJsonValueDepth} levels of objects and arrays`, 'invalid_argument');
    return { value: parsedJson(req.resultsJson, 'results') };
  }
  return req.results ? { value: toJson(ValueSchema, req.results) } : undefined;
}

function watchMessage(event: WatchEvent, form: MessageForm): execution.WatchExecutionResponse {
  const lastLogId = BigInt(event.lastLogId);
  switch (event.kind) {
    case 'log':
      return create(execution.WatchExecutionResponseSchema, { event: { case: 'log', value: toLogMessage(event.log) }, lastLogId });
    case 'progress':
      return create(execution.WatchExecutionResponseSchema, {
        event: { case: 'progress', value: create(execution.ExecutionProgressEventSchema, { progress: event.progress }) },
        lastLogId,
      });
    case 'status':
      return create(execution.WatchExecutionResponseSchema, {
        event: {
          case: 'status',
          value: create(execution.ExecutionStatusEventSchema, { status: toStatusMessage(event.execution.status), execution: toExecutionMessage(event.execution, undefined, form) }),
        },
        lastLogId,
      });
  }
}

/** gef.execution.v1.ExecutionService. */
export function executionService(deps: ExecutionServiceDeps): ServiceImpl<typeof execution.ExecutionService> {
  return {
    async runScript(req) {
      const created = await runScript(deps, actorFromCaller(req.caller), req.idOrSlug, paramsOf(req));
      return create(execution.RunScriptResponseSchema, { execution: toExecutionMessage(created, undefined, { jsonText: req.jsonText }) });
    },

    async getExecution(req) {
      const view = await getExecution(deps, actorFromCaller(req.caller), req.id, {
        includeLogs: req.includeLogs,
        excludeParams: req.excludeParams,
        excludeResults: req.excludeResults,
      });
      return create(execution.GetExecutionResponseSchema, { execution: toExecutionMessage(view.execution, view.logs, { jsonText: req.jsonText }) });
    },

    async listExecutions(req) {
      const res = await listExecutions(deps, actorFromCaller(req.caller), {
        page: req.page,
        perPage: req.perPage,
        userId: req.userId,
        ownOnly: req.ownOnly,
        status: req.status,
        scriptId: req.scriptId,
        scriptIds: req.scriptIds,
        perScript: req.perScript,
        updatedAt: dateOf(req.updatedAt),
        startDateFrom: dateOf(req.startDateFrom),
        startDateTo: dateOf(req.startDateTo),
        endDateFrom: dateOf(req.endDateFrom),
        endDateTo: dateOf(req.endDateTo),
        filter: req.filter,
        sort: req.sort,
        includeLogs: req.includeLogs,
        excludeParams: req.excludeParams,
        excludeResults: req.excludeResults,
      });
      return create(execution.ListExecutionsResponseSchema, {
        executions: res.executions.map((v) => toExecutionMessage(v.execution, v.logs, { jsonText: req.jsonText })),
        page: res.page,
        perPage: res.perPage,
        total: BigInt(res.total),
      });
    },

    async updateExecution(req) {
      const changes: ExecutionChanges = {};
      if (req.status !== undefined) {
        const status = statusFromMessage(req.status);
        if (!status) throw new InvalidArgument('Invalid status', 'invalid_argument');
        changes.status = status;
      }
      if (req.progress !== undefined) changes.progress = req.progress;
      const results = resultsOf(req);
      if (results) changes.results = results;
      const res = await updateExecution(deps, actorFromCaller(req.caller), req.executionToken || undefined, req.id, changes);
      return create(execution.UpdateExecutionResponseSchema, { execution: toExecutionMessage(res.execution, undefined, { jsonText: req.jsonText }), changed: res.changed });
    },

    async cancelExecution(req) {
      const res = await cancelExecution(deps, actorFromCaller(req.caller), req.id);
      const d = res.details;
      return create(execution.CancelExecutionResponseSchema, {
        execution: toExecutionMessage(res.execution, undefined, { jsonText: req.jsonText }),
        cancellationDetails: create(execution.CancellationDetailsSchema, {
          previousStatus: toStatusMessage(d.previousStatus),
          immediate: d.immediate,
          requestedAt: timestampFromDate(d.requestedAt),
          requestedBy: d.requestedBy,
          message: d.message,
        }),
      });
    },

    async appendExecutionLogs(req) {
      const res = await appendExecutionLogs(deps, actorFromCaller(req.caller), req.executionToken || undefined, req.id, {
        lines: linesOf(req.lines),
        ...(req.progress !== undefined ? { progress: req.progress } : {}),
        returnLogs: req.returnLogs,
      });
      return create(execution.AppendExecutionLogsResponseSchema, {
        appended: res.appended,
        status: toStatusMessage(res.status),
        stop: res.stop,
        stopReason: res.stopReason,
        ...(req.returnLogs ? { logs: res.logs.map(toLogMessage) } : {}),
      });
    },

    async listExecutionLogs(req) {
      const logs = await listExecutionLogs(deps, actorFromCaller(req.caller), req.id, {
        ...(req.start ? { after: timestampDate(req.start) } : {}),
        ...(req.lastId !== undefined ? { afterId: Number(req.lastId) } : {}),
        limit: req.limit,
      });
      return create(execution.ListExecutionLogsResponseSchema, { lines: toLogColumns(logs) });
    },

    async *watchExecution(req, ctx) {
      const events = watchExecution(deps, deps.events, actorFromCaller(req.caller), req.id, req.afterLogId !== undefined ? Number(req.afterLogId) : undefined, ctx.signal);
      try {
        for await (const event of events) yield watchMessage(event, { jsonText: req.jsonText });
      } catch (err) {
        // Errors of a stream pass the unary error interceptor by: mapped here.
        if (!(err instanceof GefError) && !(err instanceof ConnectError)) deps.logger.error({ err }, 'WatchExecution failed');
        throw toConnectError(err);
      }
    },

    async *watchChanges(_req, ctx) {
      for await (const batch of watchChanges(deps.events, ctx.signal)) {
        yield create(execution.WatchChangesResponseSchema, batch);
      }
    },

    async startExecutionAttempt(req) {
      const res = await startAttempt(deps, { executionId: req.executionId, attempt: req.attempt, runner: req.runner });
      if (!res.proceed) {
        return create(execution.StartExecutionAttemptResponseSchema, { proceed: false, reason: res.reason, status: toStatusMessage(res.status) });
      }
      const s = res.spec;
      return create(execution.StartExecutionAttemptResponseSchema, {
        proceed: true,
        status: toStatusMessage(res.status),
        token: res.token,
        runnerToken: res.runnerToken,
        paramsJson: res.paramsJson,
        userId: res.userId,
        spec: create(execution.RunSpecSchema, {
          scriptId: s.scriptId,
          version: s.version,
          digest: s.digest,
          size: BigInt(s.size),
          runtime: s.runtime,
          environmentHash: s.environmentHash,
          requirements: s.requirements,
          cpuLimit: s.cpuLimit,
          memoryLimit: BigInt(s.memoryLimit),
          timeoutSeconds: s.timeoutSeconds,
          scriptUserId: s.scriptUserId,
        }),
      });
    },

    async reportRunner(req) {
      const { everySeconds } = await reportRunner(deps, { instance: req.instance, runner: req.runner, slots: req.slots, busy: req.busy, stopping: req.stopping });
      return create(execution.ReportRunnerResponseSchema, { everySeconds });
    },

    async completeExecutionAttempt(req) {
      const status = statusFromMessage(req.status);
      if (!status) throw new InvalidArgument('Invalid status', 'invalid_argument');
      const res = await completeAttempt(deps, {
        runnerToken: req.runnerToken,
        executionId: req.executionId,
        status,
        ...(req.resultsJson !== undefined ? { resultsJson: req.resultsJson } : {}),
        lines: linesOf(req.lines),
        ...(req.progress !== undefined ? { progress: req.progress } : {}),
      });
      return create(execution.CompleteExecutionAttemptResponseSchema, { applied: res.applied, status: toStatusMessage(res.status) });
    },
  };
}
