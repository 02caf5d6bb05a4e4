import { Aborted, FailedPrecondition, InvalidArgument, jsonDepthExceeds, jsonValueCountExceeds, maxJsonValueDepth, maxResultsBytes, maxResultsValues } from '@gef/common';
import type { EntityManager } from '@gef/common/orm';
import type { ExecutionStatus } from '../entities/execution';
import { DispatchRepository } from '../repositories/dispatch-repository';
import { ExecutionLogRepository, type LogRecord } from '../repositories/execution-log-repository';
import { ExecutionRepository, nowSql, type ExecutionRecord } from '../repositories/execution-repository';
import { assertMayRead, executionIdOf, executionNotFound, requireActor, type Actor } from './actor';
import { assertMayChange, assertTokenFor, credentialOf, withoutOwnToken, type Credential } from './credentials';
import { apiLogDefaults, type ExecutionDeps } from './deps';
import { checkLines, serviceLineSeq, type NewLogLine } from './log-lines';
import { checkProgress } from './progress';
import { isTerminal, notStartedStatuses } from './statuses';

export interface ExecutionChanges {
  status?: ExecutionStatus;
  progress?: number;
  /** Present (even JSON null) when results are to be set. */
  results?: { value: unknown };
}

/** The order runs move through before they end. */
const startedRank: Partial<Record<ExecutionStatus, number>> = { READY: 1, RUNNING: 2 };

/**
 * A status a PATCH may set on a run that has not ended (Aborted, 409, otherwise): forward
 * along PENDING → READY → RUNNING, or to an end. The platform alone moves a run out of
 * PENDING (when it gets a slot and a runner), so a waiting run may only be ended; and a run
 * being cancelled ends CANCELLED.
 */
function assertMayMove(from: ExecutionStatus, to: ExecutionStatus): void {
  if (from === 'CANCELLING') {
    if (to === 'CANCELLED') return;
    throw new Aborted(`Execution is being cancelled; it can only become CANCELLED, not ${to}`, 'conflict');
  }
  if (isTerminal(to) || to === from) return;
  if (from === 'PENDING') throw new Aborted(`Execution is waiting to start; only the platform moves it to ${to}`, 'conflict');
  if ((startedRank[to] ?? 0) < (startedRank[from] ?? 0)) throw new Aborted(`Execution is ${from}; it cannot go back to ${to}`, 'conflict');
}

/**
 * PATCH /execution/<id> (ADMIN+ or the execution's token); results nested deeper than
 * `maxJsonValueDepth`, larger than `maxResultsBytes` of JSON or holding more than
 * `maxResultsValues` values are InvalidArgument. Terminal statuses are final: another status
 * afterwards is Aborted (409), the same one again a no-op. Reaching a terminal status sets
 * end_date and progress 100 (unless progress is given) and stops the run's process (its
 * workflow is told through the outbox, in the same transaction, so a Temporal that is away
 * hears it when it returns); nothing the runner sends later overwrites it.
 */
export async function updateExecution(
  deps: ExecutionDeps,
  caller: Actor | undefined,
  token: string | undefined,
  rawId: string,
  changes: ExecutionChanges,
): Promise<{ execution: ExecutionRecord; changed: boolean }> {
  const credential = await credentialOf(deps.tokenSecret, caller, token, ['execution']);
  const id = executionIdOf(rawId);
  assertTokenFor(credential, id);
  if (changes.status === undefined && changes.progress === undefined && changes.results === undefined) {
    throw new InvalidArgument('Nothing to update: give status, progress or results', 'invalid_argument');
  }
  if (changes.progress !== undefined) checkProgress(changes.progress);
  if (changes.results !== undefined && jsonDepthExceeds(changes.results.value, maxJsonValueDepth)) {
    throw new InvalidArgument(`results are nested deeper than ${maxJsonValueDepth} levels of objects and arrays`, 'invalid_argument');
  }
  if (changes.results !== undefined && jsonValueCountExceeds(changes.results.value, maxResultsValues)) {
    throw new InvalidArgument(`results hold more than ${maxResultsValues} JSON values (numbers, strings, booleans, nulls, arrays and objects)`, 'invalid_argument');
  }
  const resultsJson = changes.results === undefined ? undefined : withoutOwnToken(JSON.stringify(changes.results.value ?? null), token);
  if (resultsJson !== undefined && Buffer.byteLength(resultsJson, 'utf8') > maxResultsBytes) {
    throw new InvalidArgument(`results are larger than ${maxResultsBytes / (1024 * 1024)} MiB of JSON`, 'invalid_argument');
  }
  return deps.orm.em.fork().transactional(async (em) => {
    const repo = new ExecutionRepository(em);
    const current = await repo.lock(id);
    if (!current) throw executionNotFound();
    assertMayChange(credential, current);
    if (isTerminal(current.status)) {
      if (changes.status === current.status) return { execution: (await repo.findById(id)) ?? current, changed: false };
      throw new Aborted(`Execution is already ${current.status}; it can no longer change`, 'conflict');
    }
    // Refused once the execution is known: a missing one is a 404, an ended one a 409 (CONTRACT §6).
    if (changes.status === 'CANCELLING') {
      throw new InvalidArgument('CANCELLING is set by cancelling the execution (POST /execution/<id>/cancel)', 'invalid_argument');
    }
    if (changes.status !== undefined) assertMayMove(current.status, changes.status);
    const assignments: string[] = [];
    const params: unknown[] = [];
    if (changes.status !== undefined) {
      assignments.push('status = ?');
      params.push(changes.status);
    }
    if (resultsJson !== undefined) {
      assignments.push('results = ?::jsonb');
      params.push(resultsJson);
    }
    const reachesTerminal = changes.status !== undefined && isTerminal(changes.status);
    if (changes.progress !== undefined) {
      assignments.push('progress = ?');
      params.push(changes.progress);
    } else if (reachesTerminal) {
      assignments.push('progress = 100');
    }
    if (reachesTerminal) assignments.push(`end_date = ${nowSql}`);
    const execution = await repo.set(id, assignments, params, undefined, { notify: true });
    if (reachesTerminal) await new DispatchRepository(em).addStop(id, { reason: 'terminal', status: execution.status });
    return { execution, changed: true };
  });
}

export interface CancellationDetails {
  previousStatus: ExecutionStatus;
  immediate: boolean;
  requestedAt: Date;
  requestedBy: string;
  message: string;
}

/**
 * POST /execution/<id>/cancel (owner or ADMIN+). Not started: CANCELLED at once. Running:
 * CANCELLING; the run's workflow has the runner stop the process (signal, grace period,
 * kill) and then records CANCELLED. Terminal: InvalidArgument; already cancelling: Aborted.
 * The workflow is told through the outbox, in the same transaction: a waiting run's
 * workflow ends, and a running one stops its runner, even when Temporal was away.
 */
export async function cancelExecution(
  deps: ExecutionDeps,
  caller: Actor | undefined,
  rawId: string,
): Promise<{ execution: ExecutionRecord; details: CancellationDetails }> {
  const actor = requireActor(caller);
  const id = executionIdOf(rawId);
  return deps.orm.em.fork().transactional(async (em) => {
    const repo = new ExecutionRepository(em);
    const current = await repo.lock(id);
    if (!current) throw executionNotFound();
    assertMayRead(actor, current);
    if (isTerminal(current.status)) {
      throw new InvalidArgument(`Execution is already ${current.status}; it cannot be cancelled`, 'invalid_argument');
    }
    if (current.status === 'CANCELLING') throw new Aborted('Execution is already being cancelled', 'conflict');
    const immediate = notStartedStatuses.includes(current.status);
    const by = actor.userId === current.userId ? 'its owner' : `user ${actor.userId}`;
    const execution = immediate
      ? await repo.set(id, ["status = 'CANCELLED'", `end_date = ${nowSql}`, 'progress = 100'], [], undefined, { notify: true })
      : await repo.set(id, ["status = 'CANCELLING'"], [], undefined, { notify: true });
    const line: NewLogLine = immediate
      ? { level: 'INFO', text: `Execution cancelled by ${by} before it started`, seq: serviceLineSeq.cancelledBeforeStart }
      : { level: 'INFO', text: `Cancellation requested by ${by}: stopping the script`, seq: serviceLineSeq.cancelRequested };
    await new ExecutionLogRepository(em).append(id, current.attempt, [line]);
    await new DispatchRepository(em).addStop(id, { reason: 'cancel', status: 'CANCELLED' });
    const details: CancellationDetails = {
      previousStatus: current.status,
      immediate,
      requestedAt: execution.updatedAt,
      requestedBy: actor.userId,
      message: immediate ? 'The execution had not started; it is cancelled.' : 'The execution is being stopped; it will be CANCELLED shortly.',
    };
    return { execution, details };
  });
}

export interface AppendResult {
  appended: number;
  status: ExecutionStatus | undefined;
  stop: boolean;
  stopReason: string;
  logs: LogRecord[];
}

/** Why a runner's attempt should stop, or '' to go on. */
export function stopReasonFor(execution: ExecutionRecord, attempt: number): string {
  if (execution.attempt > attempt) return 'superseded';
  if (execution.status === 'CANCELLING') return 'cancel';
  if (isTerminal(execution.status)) return 'terminal';
  return '';
}

/**
 * Counts lines a run's script appends itself (its API_TOKEN) against the run's limits
 * (`RunSettings.apiLog`), in the caller's transaction, which holds the execution's lock:
 * past them the batch is refused and nothing of it is stored.
 */
async function countApiLines(em: EntityManager, deps: ExecutionDeps, id: string, lines: NewLogLine[]): Promise<void> {
  const limits = deps.settings.apiLog ?? apiLogDefaults;
  const bytes = lines.reduce((sum, line) => sum + Buffer.byteLength(line.text, 'utf8'), 0);
  const rows = await em.execute<{ api_log_lines: number; api_log_bytes: string }[]>(
    'update execution set api_log_lines = api_log_lines + ?, api_log_bytes = api_log_bytes + ? where id = ? returning api_log_lines, api_log_bytes',
    [lines.length, bytes, id],
  );
  const row = rows[0];
  if (row && (row.api_log_lines > limits.maxLines || Number(row.api_log_bytes) > limits.maxBytes)) {
    throw new FailedPrecondition(
      `This run's script has appended all the log it may through the API (${limits.maxLines} lines or ${limits.maxBytes} bytes of text); the lines were not stored`,
      'log_limit_reached',
    );
  }
}

/**
 * POST /execution/<id>/log (ADMIN+ or the script's token, one line at a time) and the
 * runners' batches (runner token, numbered lines, progress). Numbered lines are stored
 * once per (execution, attempt, seq). A runner's batch for an attempt that is no longer
 * current stores nothing and is told to stop.
 */
export async function appendExecutionLogs(
  deps: ExecutionDeps,
  caller: Actor | undefined,
  token: string | undefined,
  rawId: string,
  input: { lines: NewLogLine[]; progress?: number; returnLogs?: boolean },
): Promise<AppendResult> {
  const credential: Credential = await credentialOf(deps.tokenSecret, caller, token, ['execution', 'runner']);
  const id = executionIdOf(rawId);
  assertTokenFor(credential, id);
  const lines = checkLines(input.lines).map((line) => ({ ...line, text: withoutOwnToken(line.text, token) }));
  if (input.progress !== undefined) checkProgress(input.progress);
  return deps.orm.em.fork().transactional(async (em) => {
    const repo = new ExecutionRepository(em);
    let execution = await repo.lock(id);
    if (!execution) throw executionNotFound();
    assertMayChange(credential, execution);
    const runnerAttempt = credential.kind === 'token' && credential.claims.scope === 'runner' ? credential.claims.attempt : undefined;
    if (runnerAttempt !== undefined && runnerAttempt !== execution.attempt) {
      return { appended: 0, status: execution.status, stop: true, stopReason: stopReasonFor(execution, runnerAttempt) || 'superseded', logs: [] };
    }
    const attempt = credential.kind === 'token' ? credential.claims.attempt : execution.attempt;
    if (credential.kind === 'token' && credential.claims.scope === 'execution') await countApiLines(em, deps, id, lines);
    const logRepo = new ExecutionLogRepository(em);
    const stored = input.returnLogs ? await logRepo.append(id, attempt, lines) : [];
    const appended = input.returnLogs ? stored.length : await logRepo.appendCounted(id, attempt, lines);
    const progressChanged = input.progress !== undefined && !isTerminal(execution.status) && input.progress !== execution.progress;
    if (progressChanged) execution = await repo.set(id, ['progress = ?'], [input.progress], {});
    if (appended > 0 || progressChanged) await repo.notify(id);
    const stopReason = runnerAttempt !== undefined ? stopReasonFor(execution, runnerAttempt) : '';
    return { appended, status: execution.status, stop: stopReason !== '', stopReason, logs: stored };
  });
}
