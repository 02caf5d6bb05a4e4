import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from '@gef/common';
import { OutboxDispatcher } from '@gef/common/outbox';
import type { RunLauncher } from '../domain/run-launcher';
import { noteIfNoRunner, type RunnersOnline } from '../domain/runner-presence';
import { DispatchRepository, dispatchChannel, type RunDispatch } from '../repositories/dispatch-repository';
import { ExecutionRepository } from '../repositories/execution-repository';

/**
 * Tells Temporal one thing of the outbox: starts a run's workflow, tells it to stop, or wakes
 * the runs of a user that now fit its limit.
 */
export async function deliver(orm: MikroORM, runs: RunLauncher, item: RunDispatch): Promise<void> {
  if (item.kind === 'start') return runs.start(item.input);
  if (item.kind === 'stop') return runs.stop(item.executionId, item.request);
  const waiting = await orm.em.fork().transactional(async (em) => {
    const repo = new ExecutionRepository(em);
    await repo.lockUserSlots(item.userId);
    return repo.oldestWaiting(item.userId, item.limit - (await repo.countHeldSlots(item.userId)));
  });
  for (const executionId of waiting) await runs.wake(executionId);
}

/**
 * The service's dispatcher of the runs' outbox: starts the runExecution workflows of
 * accepted runs and tells them to stop when they are cancelled or ended from outside, once
 * Temporal answers (retrying with a backoff while it does not). `databaseUrl`: listen for
 * new rows (absent in tests, which drain it by hand). `runners`: a run made READY while no
 * runner is online says so in its log.
 */
export function runDispatcher(options: { orm: MikroORM; runs: RunLauncher; logger: Logger; databaseUrl?: string; runners?: RunnersOnline }): OutboxDispatcher<RunDispatch> {
  const { runners } = options;
  return new OutboxDispatcher<RunDispatch>({
    name: 'run dispatcher',
    orm: options.orm,
    // A run that took its slot when accepted is handed to the runners once its workflow starts.
    store: new DispatchRepository(undefined, runners ? (em, id, attempt) => noteIfNoRunner(em, runners, id, attempt) : undefined),
    start: (item) => deliver(options.orm, options.runs, item),
    logger: options.logger,
    ...(options.databaseUrl ? { listen: { databaseUrl: options.databaseUrl, channel: dispatchChannel } } : {}),
  });
}
