import { deleteInChunks, rowsPerDelete } from '@gef/common';
import { DeletedUserRepository } from '../repositories/deleted-user-repository';
import { DispatchRepository } from '../repositories/dispatch-repository';
import { ExecutionLogRepository } from '../repositories/execution-log-repository';
import { ExecutionRepository } from '../repositories/execution-repository';
import { RunSpecRepository } from '../repositories/run-spec-repository';
import type { ExecutionDeps } from './deps';
import { isTerminal } from './statuses';

const batchSize = 500;

/**
 * Deletes every execution a user made, with its log lines, in batches so a user with many
 * runs, or runs with long logs, never holds one huge transaction: a batch's lines go first,
 * `rowsPerDelete` at a time, then its runs (with any line written meanwhile, by cascade).
 * `onBatch` is called after each step (the activity's heartbeat; it may throw to stop). The user is first recorded as deleted
 * (waiting for their runs being accepted to commit), so no run of theirs is accepted
 * afterwards and the batches find every one there will be. Runs still going are told to stop
 * first (their workflows cancel the runner's attempt, which kills the process; a run
 * waiting for a slot just ends), so nothing of the user keeps running; a signal that
 * cannot be delivered fails the step, which is retried before anything is deleted.
 * Idempotent: a retry stops and deletes what is left. Executions other users made of this
 * user's scripts are not touched.
 */
export async function deleteExecutionsOfUser(
  deps: Pick<ExecutionDeps, 'orm' | 'runs' | 'logger'>,
  userId: string,
  onBatch: () => void = () => undefined,
  linesPerDelete = rowsPerDelete,
): Promise<number> {
  await deps.orm.em.fork().transactional((em) => new DeletedUserRepository(em).record(userId));
  // No workflow of theirs starts after this: one that did after its run was told to stop
  // (Temporal not knowing it yet) would run on, unstoppable, once the run's row was gone.
  await new DispatchRepository(deps.orm.em.fork()).dropStartsOfUser(userId);
  let deleted = 0;
  for (;;) {
    const rows = await new ExecutionRepository(deps.orm.em.fork()).idsOfUser(userId, batchSize);
    // Runs still going, and ended ones whose workflow has a stop not yet delivered (ended
    // from outside while their runner still ran): the row, and that stop with it, goes.
    for (const row of rows.filter((r) => !isTerminal(r.status) || r.stopPending)) {
      await deps.runs.stop(row.id, { reason: 'deleted' });
      onBatch();
    }
    const ids = rows.map((r) => r.id);
    await deleteInChunks(() => new ExecutionLogRepository(deps.orm.em.fork()).deleteSomeOf(ids, linesPerDelete), onBatch);
    const count = await deps.orm.em.fork().transactional(async (em) => {
      const n = await new ExecutionRepository(em).deleteByIds(ids);
      const versions = new Map(rows.map((r) => [`${r.scriptId}:${r.scriptVersion}`, { scriptId: r.scriptId, version: r.scriptVersion }]));
      await new RunSpecRepository(em).pruneUnused([...versions.values()]);
      return n;
    });
    deleted += count;
    onBatch();
    if (rows.length < batchSize) return deleted;
  }
}
