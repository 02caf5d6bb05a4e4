import { FailedPrecondition, InvalidArgument, jsonTextDepthExceeds, jsonTextValueCountExceeds, maxJsonValueDepth, maxResultsBytes, maxResultsValues } from '@gef/common';
import { signExecutionToken, verifyExecutionToken } from '@gef/common/execution-token';
import type { ExecutionStatus } from '../entities/execution';
import { ExecutionLogRepository, savepointFrom } from '../repositories/execution-log-repository';
import { ExecutionRepository, nowSql, type ExecutionRecord } from '../repositories/execution-repository';
import { toSpec, type RunSpecRecord } from '../repositories/run-spec-repository';
import { executionIdOf } from './actor';
import type { ExecutionDeps } from './deps';
import { checkLines, serviceLineSeq, storableJson, type NewLogLine } from './log-lines';
import { checkProgress } from './progress';
import { runnerName } from './runner-presence';
import { isTerminal } from './statuses';

export type AttemptStart =
  | { proceed: false; reason: string; status: ExecutionStatus | undefined }
  | {
      proceed: true;
      status: ExecutionStatus;
      token: string;
      runnerToken: string;
      paramsJson: string;
      spec: RunSpecRecord & { timeoutSeconds: number };
      userId: string;
    };

/**
 * A runner takes a run: RUNNING with the attempt number and a log line saying where, the
 * params, the pinned version's spec and two tokens for this attempt. Not when the run has
 * ended, is being cancelled, or a later attempt exists.
 */
export async function startAttempt(deps: ExecutionDeps, input: { executionId: string; attempt: number; runner: string }): Promise<AttemptStart> {
  const id = executionIdOf(input.executionId);
  if (!Number.isInteger(input.attempt) || input.attempt < 1) throw new InvalidArgument('attempt must be 1 or more', 'invalid_argument');
  const runner = runnerName(input.runner);
  const retry = input.attempt > 1 ? ' (the previous attempt did not finish: its runner stopped answering or failed)' : '';
  const line: NewLogLine = { level: 'INFO', text: `Attempt ${input.attempt} started on runner ${runner}${retry}`, seq: serviceLineSeq.attemptStarted };
  // One statement: the row locked, RUNNING with the attempt and its log line when it may start.
  const taken = await new ExecutionRepository(deps.orm.em.fork()).startAttempt(id, input.attempt, (changed) =>
    ExecutionLogRepository.appendAlongside(id, input.attempt, [line], changed),
  );
  const started = decideTake(taken, input.attempt);
  if (!started.proceed) return started;
  const { execution, spec } = started;
  const timeoutSeconds = spec.timeout > 0 ? spec.timeout : deps.settings.defaultTimeoutSeconds;
  // Valid while the run may go on; the service also refuses it once the run has ended.
  const ttlSeconds = timeoutSeconds + deps.settings.prepareTimeoutSeconds + 600;
  const [token, runnerToken] = await Promise.all([
    signExecutionToken(deps.tokenSecret, { executionId: id, scope: 'execution', attempt: input.attempt, ttlSeconds }),
    signExecutionToken(deps.tokenSecret, { executionId: id, scope: 'runner', attempt: input.attempt, ttlSeconds }),
  ]);
  return {
    proceed: true,
    status: execution.status,
    token,
    runnerToken,
    paramsJson: execution.paramsJson ?? '{}',
    spec: { ...spec, timeoutSeconds },
    userId: execution.userId,
  };
}

type Take = { proceed: false; reason: string; status: ExecutionStatus | undefined } | { proceed: true; execution: ExecutionRecord; spec: RunSpecRecord };

/** What a runner asking for `attempt` gets, from the row as the take found it. */
function decideTake(taken: Awaited<ReturnType<ExecutionRepository['startAttempt']>>, attempt: number): Take {
  if (!taken) return { proceed: false, reason: 'the execution no longer exists', status: undefined };
  const { current } = taken;
  if (isTerminal(current.status)) return { proceed: false, reason: `the execution is already ${current.status}`, status: current.status };
  if (current.status === 'CANCELLING') return { proceed: false, reason: 'the execution is being cancelled', status: current.status };
  if (current.attempt > attempt) return { proceed: false, reason: `attempt ${current.attempt} runs the execution`, status: current.status };
  if (!taken.spec) throw new FailedPrecondition(`No run spec for version ${current.scriptVersion} of script ${current.scriptId}`, 'failed_precondition');
  // Not changed: the same attempt started again (the runner's activity retried after a lost
  // answer) gets the same grant.
  return { proceed: true, execution: taken.changed ?? current, spec: toSpec(taken.spec) };
}

export interface AttemptOutcome {
  runnerToken: string;
  executionId: string;
  status: ExecutionStatus;
  /** JSON text of the results (FINISHED). */
  resultsJson?: string;
  lines: NewLogLine[];
  progress?: number;
}

/** The line of a run whose results were refused for their depth. */
export const resultsTooDeepLine = `The script's result is nested deeper than ${maxJsonValueDepth} levels of objects and arrays: it was not stored and the run failed`;
/** The line of a run whose results were refused for their size in bytes. */
export const resultsTooBigLine = `The script's result is larger than ${maxResultsBytes / (1024 * 1024)} MiB of JSON: it was not stored and the run failed`;
/** The line of a run whose results were refused for their number of values. */
export const resultsTooManyValuesLine = `The script's result holds more than ${maxResultsValues} JSON values (numbers, strings, booleans, nulls, arrays and objects): it was not stored and the run failed`;

/** Why results cannot be stored, as the run's ERROR line; undefined when they can. */
function unstorableResults(json: string): NewLogLine | undefined {
  if (Buffer.byteLength(json, 'utf8') > maxResultsBytes) return { level: 'ERROR', text: resultsTooBigLine, seq: serviceLineSeq.resultsTooLarge };
  if (jsonTextDepthExceeds(json, maxJsonValueDepth)) return { level: 'ERROR', text: resultsTooDeepLine, seq: serviceLineSeq.resultsTooDeep };
  if (jsonTextValueCountExceeds(json, maxResultsValues)) return { level: 'ERROR', text: resultsTooManyValuesLine, seq: serviceLineSeq.resultsTooLarge };
  return undefined;
}

/**
 * A runner's outcome: its last lines are stored in any case; the status only while the
 * attempt is current and the run is not terminal (a status set from outside wins). A run
 * being cancelled ends CANCELLED whatever the script did meanwhile. Results nested deeper
 * than `maxJsonValueDepth`, larger than `maxResultsBytes` or holding more than
 * `maxResultsValues` values are not stored: a FINISHED outcome becomes FAILED, with an
 * ERROR line saying why.
 */
export async function completeAttempt(deps: ExecutionDeps, input: AttemptOutcome): Promise<{ applied: boolean; status: ExecutionStatus | undefined }> {
  const claims = await verifyExecutionToken(deps.tokenSecret, input.runnerToken, ['runner']);
  const id = executionIdOf(input.executionId);
  if (claims.executionId !== id) throw new InvalidArgument('The runner token belongs to another execution', 'invalid_argument');
  if (!['FINISHED', 'FAILED', 'CANCELLED'].includes(input.status)) {
    throw new InvalidArgument('A runner ends a run FINISHED, FAILED or CANCELLED', 'invalid_argument');
  }
  const lines = checkLines(input.lines);
  if (input.progress !== undefined) checkProgress(input.progress);
  let results = input.resultsJson;
  let status = input.status;
  const unstorable = results === undefined ? undefined : unstorableResults(results);
  if (unstorable) {
    // Not stored (no answer could carry them, or not without costing every reader hundreds
    // of MB): the run fails saying why. Refusing the call instead would have the runner
    // retry an outcome that can never be recorded.
    deps.logger.warn({ executionId: id, attempt: claims.attempt, resultsLength: results!.length }, `results not stored: ${unstorable.text}`);
    if (status === 'FINISHED') status = 'FAILED';
    results = undefined;
    lines.push(unstorable);
  }
  if (results !== undefined) {
    try {
      results = storableJson(results);
    } catch {
      throw new InvalidArgument('results_json is not JSON', 'invalid_argument');
    }
  }
  // The usual outcome (the attempt is current, the run neither ended nor being cancelled) in
  // one statement; the rest go through the transaction below.
  const outcome = outcomeAssignments(status, results, input.progress);
  if (lines.length <= savepointFrom) {
    const done = await new ExecutionRepository(deps.orm.em.fork()).completeAttempt(id, claims.attempt, status, outcome.assignments, outcome.params, (current) =>
      ExecutionLogRepository.appendAlongside(id, claims.attempt, lines, current),
    );
    if (!done) return { applied: false, status: undefined };
    if (done.attempt !== claims.attempt) return { applied: false, status: done.status };
    if (done.applied) return { applied: true, status: done.applied };
    // Ended already or being cancelled: its lines are stored (the transaction skips them).
  }
  return deps.orm.em.fork().transactional(async (em) => {
    const repo = new ExecutionRepository(em);
    const current = await repo.lock(id);
    if (!current) return { applied: false, status: undefined };
    if (current.attempt !== claims.attempt) return { applied: false, status: current.status };
    const logs = new ExecutionLogRepository(em);
    await logs.appendCounted(id, claims.attempt, lines);
    if (isTerminal(current.status) || (status === 'CANCELLED' && current.status !== 'CANCELLING')) {
      // Ended from outside: the runner's last lines are in; the run's event streams may end.
      await repo.releaseRunner(id, claims.attempt);
      await repo.notify(id);
      return { applied: false, status: current.status };
    }
    let ended: ExecutionStatus = status;
    let { assignments, params } = outcome;
    if (current.status === 'CANCELLING') {
      ended = 'CANCELLED';
      ({ assignments, params } = outcomeAssignments(ended, undefined, undefined));
      if (status !== 'CANCELLED') {
        await logs.append(id, claims.attempt, [
          { level: 'INFO', text: `The script ended (${status}) before it could be stopped`, seq: serviceLineSeq.endedBeforeStopped },
        ]);
      }
      await logs.append(id, claims.attempt, [{ level: 'INFO', text: 'Execution cancelled', seq: serviceLineSeq.cancelled }]);
    }
    const execution = await repo.set(id, ['status = ?', ...assignments], [ended, ...params], {}, { notify: true });
    return { applied: true, status: execution.status };
  });
}

/**
 * What ending a run with `status` sets besides the status (SQL assignments with `?` params):
 * the end, no runner holding it, and, as a PATCH reaching a terminal status does, progress
 * 100 unless the outcome carries one (a failed script's last progress).
 */
function outcomeAssignments(status: ExecutionStatus, results: string | undefined, progress: number | undefined): { assignments: string[]; params: unknown[] } {
  const ended = [`end_date = ${nowSql}`, 'runner_attempt = null'];
  if (status === 'FINISHED') return { assignments: [...ended, 'results = ?::jsonb', 'progress = 100'], params: [results ?? 'null'] };
  if (status !== 'CANCELLED' && progress !== undefined) return { assignments: [...ended, 'progress = ?'], params: [progress] };
  return { assignments: [...ended, 'progress = 100'], params: [] };
}
