import { InvalidArgument, uuidPattern } from '@gef/common';
import type { EntityManager } from '@gef/common/orm';
import type { MikroORM } from '@mikro-orm/postgresql';
import { ExecutionLogRepository } from '../repositories/execution-log-repository';
import { RunnerPresenceRepository, type RunnerReport, type RunnersCount } from '../repositories/runner-presence-repository';
import { serviceLineSeq } from './log-lines';

/** How often a runner reports itself. */
export const runnerReportSeconds = 15;

/** A runner counts as online this long after its last report: three reports missed, it is not. */
export const runnerOnlineSeconds = 3 * runnerReportSeconds;

/** How long one answer to "is any runner online?" is reused. */
const onlineCacheMs = 5000;

/** `read` on `em` inside its transaction, behind a savepoint: a failed read leaves the transaction usable. */
async function readInTransaction<T>(em: EntityManager, read: () => Promise<T>): Promise<T> {
  await em.execute('savepoint gef_runners_online');
  try {
    const value = await read();
    await em.execute('release savepoint gef_runners_online');
    return value;
  } catch (err) {
    await em.execute('rollback to savepoint gef_runners_online').catch(() => undefined);
    throw err;
  }
}

/** Whether runners are online, as their reports say; asked for each run handed to them. */
export class RunnersOnline {
  private known: { at: number; online: Promise<boolean>; value?: boolean } | undefined;

  constructor(private readonly orm: MikroORM) {}

  /**
   * Whether any runner reported in the last `runnerOnlineSeconds` and has not stopped (one
   * answer reused for 5 s). Read on `em`, the caller's connection, in its transaction:
   * callers hold locks, and a second connection from the pool could wait behind requests that
   * wait on those locks.
   */
  any(em: EntityManager): Promise<boolean> {
    const now = Date.now();
    if (!this.known || now - this.known.at > onlineCacheMs) {
      const online = readInTransaction(em, async () => (await new RunnerPresenceRepository(em).online(runnerOnlineSeconds)).runners > 0);
      const known: NonNullable<typeof this.known> = { at: now, online };
      this.known = known;
      online.then(
        (value) => void (known.value = value),
        // A failed read is not kept: the next question asks again.
        () => {
          if (this.known === known) this.known = undefined;
        },
      );
    }
    return this.known.online;
  }

  /** The runners online and their slots. */
  count(): Promise<RunnersCount> {
    return new RunnerPresenceRepository(this.orm.em.fork()).online(runnerOnlineSeconds);
  }

  /**
   * A runner reported: a runner that stops, or one that comes while none was known, counts at
   * once (the next question reads afresh). Other reports leave the answer as it is.
   */
  heard(stopping: boolean): void {
    if (stopping || this.known?.value === false) this.known = undefined;
  }
}

/** A runner's name as a runner gives it (its host name): trimmed, at most 200 characters. */
export const runnerName = (raw: string): string => raw.trim().slice(0, 200) || 'unknown';

/** ReportRunner: records a runner's report; answers how often to report. */
export async function reportRunner(deps: { orm: MikroORM; runners?: RunnersOnline }, input: RunnerReport): Promise<{ everySeconds: number }> {
  if (!uuidPattern.test(input.instance)) throw new InvalidArgument('instance must be a UUID', 'invalid_argument');
  for (const [name, value] of [
    ['slots', input.slots],
    ['busy', input.busy],
  ] as const) {
    if (!Number.isInteger(value) || value < 0 || value > 100_000) throw new InvalidArgument(`${name} must be a whole number from 0 to 100000`, 'invalid_argument');
  }
  await new RunnerPresenceRepository(deps.orm.em.fork()).report({ ...input, instance: input.instance.toLowerCase(), runner: runnerName(input.runner) });
  deps.runners?.heard(input.stopping);
  return { everySeconds: runnerReportSeconds };
}

/** The line of a run handed to the runners while none is online. */
export const noRunnerText = 'No runner is online: the run starts when one is';

/**
 * A run was just handed to the runners (READY): while no runner is online, its log says so
 * (a numbered line: written once, however often the step is retried). Callers hold the
 * run's row lock. Without `runners` (tests of other parts), nothing is checked; a check that
 * fails writes nothing (the run goes on as ever).
 */
export async function noteIfNoRunner(em: EntityManager, runners: RunnersOnline | undefined, executionId: string, attempt: number): Promise<void> {
  if (!runners || (await runners.any(em).catch(() => true))) return;
  await new ExecutionLogRepository(em).append(executionId, attempt, [{ level: 'WARNING', text: noRunnerText, seq: serviceLineSeq.noRunner }]);
}
