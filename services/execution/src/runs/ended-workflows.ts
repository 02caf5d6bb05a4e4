import type { MikroORM } from '@mikro-orm/postgresql';
import { describeError, sharedCounter, type Logger, type MetricsRegistry } from '@gef/common';
import type { RunLauncher, RunWorkflowStates } from '../domain/run-launcher';
import { endRun, giveSlotBack } from '../domain/run-slots';
import { ExecutionRepository } from '../repositories/execution-repository';
import { deliver } from './run-dispatcher';

/** The reason logged on a run whose workflow ended without ending it. */
export const workflowEndedReason = 'Its workflow was ended in Temporal (terminated, reset or timed out) before it ended the run';

export interface EndedWorkflowsOptions {
  orm: MikroORM;
  runs: RunLauncher;
  workflows: RunWorkflowStates;
  logger: Logger;
  /** The slots of a USER's runs (MAX_CONCURRENT_EXECUTIONS): a slot given back wakes the runs that now fit. */
  maxConcurrent: number;
  /** Runs accepted this long ago at least (default 60 s): a workflow that has just started is left to start. */
  graceSeconds?: number;
  /** Runs looked at in one pass (default 500); the next pass goes on after the last. */
  perPass?: number;
  /** Counts the runs ended (`gef_runs_ended_for_ended_workflows_total`), by the status they got. */
  registry?: MetricsRegistry;
}

const firstId = '00000000-0000-0000-0000-000000000000';

/**
 * Ends the runs whose runExecution workflow ended without ending them: an operator
 * terminated or reset it in Temporal, or it timed out. Only a run's workflow ends it (or
 * its runner's report) and gives its user's slot back, so such a run stayed RUNNING, PENDING
 * or CANCELLING for ever and held the slot: after a few, the user's runs waited for ever.
 * Each pass looks at up to `perPass` runs that are not ended or hold a slot (a cursor
 * goes round all of them over passes), asks Temporal for each one's workflow, and for one
 * that has ended does what the workflow's end would have: ends the run (FAILED; CANCELLED
 * when it was being cancelled; an ended one stays as it is) with the reason as a log line,
 * gives its slot back and wakes the user's runs that now fit. Every step is idempotent, so
 * a workflow ending by itself at the same moment changes nothing. A pass stops at the first
 * failure to reach Temporal; users whose waiting runs could not be woken are tried again at
 * the next pass.
 */
export class EndedWorkflows {
  private cursor = firstId;
  private readonly toWake = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private passing: Promise<unknown> | undefined;
  private stopped = false;
  private readonly counted: ReturnType<typeof sharedCounter<'status'>> | undefined;

  constructor(private readonly options: EndedWorkflowsOptions) {
    this.counted =
      options.registry &&
      sharedCounter(options.registry, 'gef_runs_ended_for_ended_workflows_total', 'Runs ended because their workflow had ended without ending them (terminated, reset or timed out in Temporal), by status', ['status'] as const);
  }

  /** One pass; resolves to the runs it ended. */
  async pass(): Promise<string[]> {
    const { orm, workflows, maxConcurrent } = this.options;
    const limit = this.options.perPass ?? 500;
    const runs = await new ExecutionRepository(orm.em.fork()).runsToCheck(this.cursor, this.options.graceSeconds ?? 60, limit);
    const ended: string[] = [];
    for (const run of runs) {
      if (this.stopped) return ended;
      if (await workflows.workflowEnded(run.id)) {
        const end = await endRun({ orm }, { executionId: run.id, status: 'FAILED', reason: workflowEndedReason });
        // Its slot as it is now (it may have taken one since it was read): given back if held.
        const { released } = await giveSlotBack({ orm }, { executionId: run.id, userId: run.userId, limit: maxConcurrent });
        // Counted when this pass changed it: not a run whose workflow ended it in the meantime
        // (nor one another replica's pass reached first).
        if (end.ended || released) {
          // A slot given back, or a waiting run ahead of others gone: the user's next runs may fit.
          this.toWake.add(run.userId);
          ended.push(run.id);
          this.counted?.inc({ status: end.status });
          this.options.logger.warn({ executionId: run.id, status: end.status, slotReleased: released }, "a run's workflow ended without ending it: the run is ended and its slot given back");
        }
      }
      // The next pass goes on after the last run done (one that failed is looked at again).
      this.cursor = run.id;
    }
    // Round all of them: the next pass starts again from the first.
    if (runs.length < limit) this.cursor = firstId;
    for (const userId of [...this.toWake]) {
      if (this.stopped) return ended;
      await deliver(orm, this.options.runs, { kind: 'wake', userId, limit: maxConcurrent });
      this.toWake.delete(userId);
    }
    return ended;
  }

  /** A pass now and every `everyMs`; failures are logged and the next pass tries again. */
  start(everyMs: number): void {
    const run = () => {
      this.passing ??= this.pass()
        .catch((err: unknown) => this.options.logger.warn({ err: describeError(err) }, 'the check of ended run workflows failed; it runs again shortly'))
        .finally(() => (this.passing = undefined));
    };
    run();
    this.timer = setInterval(run, everyMs);
    this.timer.unref();
  }

  /** No pass from now on; one under way stops after the run it is at. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.passing;
  }
}
