import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, type Client } from '@connectrpc/connect';
import { execution } from '@gef/protos';
import type { AttemptGrant, AttemptResult, ExecutionsApi } from '../activities/run-script';
import type { NumberedLine } from './execution-log-sink';

const statusNames = new Map<execution.ExecutionStatus, string>([
  [execution.ExecutionStatus.PENDING, 'PENDING'],
  [execution.ExecutionStatus.READY, 'READY'],
  [execution.ExecutionStatus.RUNNING, 'RUNNING'],
  [execution.ExecutionStatus.FINISHED, 'FINISHED'],
  [execution.ExecutionStatus.FAILED, 'FAILED'],
  [execution.ExecutionStatus.CANCELLING, 'CANCELLING'],
  [execution.ExecutionStatus.CANCELLED, 'CANCELLED'],
]);
const statusName = (s: execution.ExecutionStatus) => statusNames.get(s) ?? 'GONE';

const levels: Record<NumberedLine['level'], execution.LogLevel> = {
  DEBUG: execution.LogLevel.DEBUG,
  INFO: execution.LogLevel.INFO,
  WARNING: execution.LogLevel.WARNING,
  ERROR: execution.LogLevel.ERROR,
  CRITICAL: execution.LogLevel.CRITICAL,
};

const toLines = (lines: NumberedLine[]) => lines.map((l) => create(execution.LogLineSchema, { text: l.text, level: levels[l.level], seq: l.seq }));

const outcomes: Record<AttemptResult['status'], execution.ExecutionStatus> = {
  FINISHED: execution.ExecutionStatus.FINISHED,
  FAILED: execution.ExecutionStatus.FAILED,
  CANCELLED: execution.ExecutionStatus.CANCELLED,
};

/** The execution service's runner RPCs. */
export function executionsApi(client: Client<typeof execution.ExecutionService>): ExecutionsApi {
  return {
    async startAttempt(executionId, attempt, runner, signal): Promise<AttemptGrant> {
      const r = await client.startExecutionAttempt(create(execution.StartExecutionAttemptRequestSchema, { executionId, attempt, runner }), signal ? { signal } : {});
      const s = r.spec;
      return {
        proceed: r.proceed,
        reason: r.reason,
        status: statusName(r.status),
        token: r.token,
        runnerToken: r.runnerToken,
        paramsJson: r.paramsJson || '{}',
        userId: r.userId,
        spec: {
          scriptId: s?.scriptId ?? '',
          version: s?.version ?? 0,
          digest: s?.digest ?? '',
          size: Number(s?.size ?? 0n),
          runtime: s?.runtime ?? 'python3',
          environmentHash: s?.environmentHash ?? '',
          requirements: s?.requirements ?? '',
          cpuLimit: s?.cpuLimit ?? 0,
          memoryLimit: Number(s?.memoryLimit ?? 0n),
          timeoutSeconds: s?.timeoutSeconds ?? 0,
          scriptUserId: s?.scriptUserId ?? '',
        },
      };
    },
    async appendLogs(executionId, runnerToken, batch) {
      try {
        const r = await client.appendExecutionLogs(
          create(execution.AppendExecutionLogsRequestSchema, {
            id: executionId,
            executionToken: runnerToken,
            lines: toLines(batch.lines),
            ...(batch.progress !== undefined ? { progress: batch.progress } : {}),
          }),
        );
        return { stop: r.stop, stopReason: r.stopReason, status: statusName(r.status) };
      } catch (err) {
        // The execution was deleted (its user was): the run stops, there is nothing to send.
        if (ConnectError.from(err).code === Code.NotFound) return { stop: true, stopReason: 'gone', status: 'GONE' };
        throw err;
      }
    },
    async completeAttempt(result, signal) {
      const r = await client.completeExecutionAttempt(
        create(execution.CompleteExecutionAttemptRequestSchema, {
          executionId: result.executionId,
          runnerToken: result.runnerToken,
          status: outcomes[result.status],
          ...(result.resultsJson !== undefined ? { resultsJson: result.resultsJson } : {}),
          lines: toLines(result.lines),
          ...(result.progress !== undefined ? { progress: result.progress } : {}),
        }),
        signal ? { signal } : {},
      );
      return { applied: r.applied, status: statusName(r.status) };
    },
  };
}
