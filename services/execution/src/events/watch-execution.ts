import type { LogRecord } from '../repositories/execution-log-repository';
import { ExecutionLogRepository } from '../repositories/execution-log-repository';
import { ExecutionRepository, type ExecutionRecord } from '../repositories/execution-repository';
import { assertMayRead, executionIdOf, executionNotFound, requireActor, type Actor } from '../domain/actor';
import type { ExecutionDeps, RunSettings } from '../domain/deps';
import { isTerminal } from '../domain/statuses';
import type { ExecutionEvents } from './execution-events';

export type WatchEvent =
  | { kind: 'status'; execution: ExecutionRecord; lastLogId: number }
  | { kind: 'progress'; progress: number; lastLogId: number }
  | { kind: 'log'; log: LogRecord; lastLogId: number };

type StateEvent = Extract<WatchEvent, { kind: 'status' | 'progress' }>;

const page = 500;
/**
 * The most line text (as JSON strings take it) one read of a stream holds: 500 lines of
 * 32 KiB would be 16 MB per stream at once. The stream reads on until it has every line.
 */
const pageBytes = 1024 * 1024;
/**
 * The longest a runner lets a stopping script run before it kills it: its
 * SANDBOX_KILL_GRACE_SECONDS (services/runner) goes up to 300.
 */
export const maxKillGraceSeconds = 300;

/**
 * How long a stream of a run ended from outside waits, at most, for the runner still stopping
 * its script to deliver its last lines ("The script stopped", the stderr tail) and complete
 * its attempt (a runner that died meanwhile never does): the runner hears of the end by its
 * next heartbeat, lets the script stop for up to the largest grace, then reports. The stream
 * ends as soon as the attempt is recorded complete; this only bounds the wait.
 */
export function runnerTailMs(heartbeatTimeoutSeconds = 10): number {
  return (heartbeatTimeoutSeconds + maxKillGraceSeconds + 20) * 1000;
}

/**
 * How often a stream reads its execution again when nothing woke it: a safety net, so that a
 * notification lost on the way (and not reported as a lost connection) delays a stream by
 * this much instead of stalling it for good. Two reads by primary key per stream per round.
 */
export const resyncMs = 30_000;

export interface WatchOptions {
  /** Overrides `resyncMs` (tests). */
  resyncMs?: number;
}

/**
 * An execution's state, then its log lines, progress and status changes as they happen,
 * woken by the change announcements (and, as a safety net, every `resyncMs`). Resumes
 * strictly after `afterLogId`; lines come in id order, which is commit order for one
 * execution. Each round reads the state before the lines, so the lines written with a
 * terminal status are sent before it; the stream ends after the terminal status, once no
 * runner holds the run: a run ended from outside (a PATCH, an external runtime) keeps its
 * runner's last lines coming after it, for at most `runnerTailMs` after its end.
 */
export async function* watchExecution(
  deps: Pick<ExecutionDeps, 'orm'> & { settings?: Pick<RunSettings, 'heartbeatTimeoutSeconds'> },
  events: ExecutionEvents,
  caller: Actor | undefined,
  rawId: string,
  afterLogId: number | undefined,
  signal: AbortSignal,
  options: WatchOptions = {},
): AsyncGenerator<WatchEvent> {
  const actor = requireActor(caller);
  const id = executionIdOf(rawId);
  const em = () => deps.orm.em.fork();
  const tailMs = runnerTailMs(deps.settings?.heartbeatTimeoutSeconds);
  const everyMs = options.resyncMs ?? resyncMs;
  const first = await new ExecutionRepository(em()).findById(id, { params: false, results: false });
  if (!first) throw executionNotFound();
  assertMayRead(actor, first);

  let dirty = true;
  let wake: (() => void) | undefined;
  const poke = () => {
    dirty = true;
    wake?.();
  };
  const unsubscribe = events.subscribe(id, poke);
  signal.addEventListener('abort', poke);
  void events.start();
  let cursor = afterLogId ?? 0;
  let status: string | undefined;
  let progress: number | undefined;
  /** When the run ended, once the stream saw it ended. */
  let endedAt: number | undefined;
  try {
    for (let round = 0; !signal.aborted; round++) {
      if (!dirty) {
        // Read again after a while even if nothing says so; waiting on a runner's last lines,
        // not past the deadline, even if it never answers.
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
          if (dirty || signal.aborted) resolve();
          const tail = endedAt === undefined ? Infinity : Math.max(0, endedAt + tailMs - Date.now()) + 10;
          timer = setTimeout(poke, Math.min(everyMs, tail)).unref();
        });
        clearTimeout(timer);
        wake = undefined;
        continue;
      }
      dirty = false;
      const repo = new ExecutionRepository(em());
      // One read: the results come with a terminal status (the status event carries them).
      const state = await repo.findById(id, { params: false, results: 'terminal' });
      if (!state) return;
      const terminal = isTerminal(state.status);
      const progressChanged = state.progress !== progress;
      const statusChanged = state.status !== status;
      progress = state.progress;
      status = state.status;
      const statusEvent: StateEvent | undefined = statusChanged ? { kind: 'status', execution: state, lastLogId: cursor } : undefined;
      const progressEvent: StateEvent | undefined =
        progressChanged && (round > 0 || state.progress !== 0) ? { kind: 'progress', progress: state.progress, lastLogId: cursor } : undefined;
      // The first round tells the state before the lines (unless it is final). Otherwise the
      // lines come first, so a client that stops at a terminal status has them all, and a
      // progress change comes before the status change (a run reaches 100 before FINISHED).
      const stateFirst = round === 0 && !terminal;
      const stateEvents = (stateFirst ? [statusEvent, progressEvent] : [progressEvent, statusEvent]).filter((e): e is StateEvent => e !== undefined);
      if (stateFirst) for (const e of stateEvents) yield { ...e, lastLogId: cursor };
      const logs = new ExecutionLogRepository(em());
      for (;;) {
        const { lines, full } = await logs.page(id, { afterId: cursor, limit: page, maxBytes: pageBytes });
        for (const log of lines) {
          cursor = log.id;
          yield { kind: 'log', log, lastLogId: cursor };
        }
        if ((lines.length < page && !full) || signal.aborted) break;
      }
      if (!stateFirst) for (const e of stateEvents) yield { ...e, lastLogId: cursor };
      if (terminal) {
        // Counted from the run's end: a stream opened long after (its runner died without
        // reporting) does not wait.
        endedAt ??= state.endDate?.getTime() ?? Date.now();
        if (state.runnerAttempt === null || Date.now() - endedAt >= tailMs) return;
      }
    }
  } finally {
    unsubscribe();
    signal.removeEventListener('abort', poke);
  }
}
