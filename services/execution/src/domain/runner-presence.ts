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

/** Whether runners are online, as their reports say; asked for each run handed to them. */
export class RunnersOnline {
  private known: { at: number; online: Promise<boolean> } | undefined;

  constructor(private readonly orm: MikroORM) {}

  /** Whether any runner reported in the last `runnerOnlineSeconds` (one answer reused for 5 s). */
  any(): Promise<boolean> {
    const now = Date.now();
    if (!this.known || now - this.known.at > onlineCacheMs) {
      const online = this.count().then((c) => c.runners > 0);
      this.known = { at: now, online };
      // A failed read is not kept: the next question asks again.
      online.catch(() => {
        if (this.known?.online === online) this.known = undefined;
      });
    }
    return this.known.online;
  }

  /** The runners online and their slots. */
  count(): Promise<RunnersCount> {
    return new RunnerPresenceRepository(this.orm.em.fork()).online(runnerOnlineSeconds);
  }

  /** A runner reported: the next question reads afresh (a runner that came or went counts at once). */
  heard(): void {
    this.known = undefined;
  }
}

/** ReportRunner: records a runner's report; answers how often to report. */
export async function reportRunner(deps: { orm: MikroORM; runners?: RunnersOnline }, input: RunnerReport): Promise<{ everySeconds: number }> {
  if (!uuidPattern.test(input.instance)) throw new InvalidArgument('instance must be a UUID', 'invalid_argument');
  for (const [name, value] of [
    ['slots', input.slots],
    ['busy', input.busy],
  ] as const) {
    if (!Number.isInteger(value) || value < 0 || value > 100_000) throw new InvalidArgument(`${name} must be a whole number from 0 to 100000`, 'invalid_argument');
  }
  const runner = input.runner.trim().slice(0, 200) || 'unknown';
  await new RunnerPresenceRepository(deps.orm.em.fork()).report({ ...input, instance: input.instance.toLowerCase(), runner });
  deps.runners?.heard();
  return { everySeconds: runnerReportSeconds };
}

/** The line of a run handed to the runners while none is online. */
export const noRunnerText = 'No runner is online: the run starts when one is';

/**
 * A run was just handed to the runners (READY): while no runner is online, its log says so
 * (a numbered line: written once, however often the step is retried). Callers hold the
 * run's row lock. Without `runners` (tests of other
 * parts), nothing is checked; a check that fails writes nothing (the run goes on as ever).
 */
export async function noteIfNoRunner(em: EntityManager, runners: RunnersOnline | undefined, executionId: string, attempt: number): Promise<void> {
  if (!runners || (await runners.any().catch(() => true))) return;
  await new ExecutionLogRepository(em).append(executionId, attempt, [{ level: 'WARNING', text: noRunnerText, seq: serviceLineSeq.noRunner }]);
}
