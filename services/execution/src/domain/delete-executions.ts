import { ExecutionRepository } from '../repositories/execution-repository';
import { RunSpecRepository } from '../repositories/run-spec-repository';
import type { ExecutionDeps } from './deps';
import { isTerminal } from './statuses';

const batchSize = 500;

/**
 * Deletes every execution a user made, with its log lines (cascade), in batches so a user
 * with many runs never holds one huge transaction; runs still going are told to stop
 * (their runners also learn it at their next call). Idempotent: a retry deletes what is
 * left. Executions other users made of this user's scripts are not touched.
 */
export async function deleteExecutionsOfUser(
  deps: Pick<ExecutionDeps, 'orm' | 'runs' | 'logger'>,
  userId: string,
  onBatch: () => void = () => undefined,
): Promise<number> {
  let deleted = 0;
  for (;;) {
    const batch = await deps.orm.em.fork().transactional(async (em) => {
      const repo = new ExecutionRepository(em);
      const rows = await repo.idsOfUser(userId, batchSize);
      const count = await repo.deleteByIds(rows.map((r) => r.id));
      const versions = new Map(rows.map((r) => [`${r.scriptId}:${r.scriptVersion}`, { scriptId: r.scriptId, version: r.scriptVersion }]));
      await new RunSpecRepository(em).pruneUnused([...versions.values()]);
      return { rows, count };
    });
    deleted += batch.count;
    for (const row of batch.rows.filter((r) => !isTerminal(r.status))) {
      await deps.runs.stop(row.id, { reason: 'deleted' }).catch((err: unknown) => deps.logger.warn({ err: String(err), executionId: row.id }, 'could not signal a deleted run'));
    }
    onBatch();
    if (batch.rows.length < batchSize) return deleted;
  }
}
