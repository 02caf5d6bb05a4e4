import type { ClaimSlotInput, ClaimSlotResult, EndExecutionInput, EndExecutionResult, ReleaseSlotInput, ReleaseSlotResult } from '@gef/workflows/activities';
import type { EntityManager } from '@gef/common/orm';
import { ExecutionLogRepository } from '../repositories/execution-log-repository';
import { ExecutionRepository, nowSql } from '../repositories/execution-repository';
import type { ExecutionDeps } from './deps';
import { serviceLineSeq } from './log-lines';
import { noteIfNoRunner } from './runner-presence';
import { isTerminal } from './statuses';

/**
 * The concurrency queue, kept in the database: a run holds one of its user's slots from the
 * grant (READY) until its workflow ends. A run may take a slot when fewer than `limit` are
 * held and no older run of the user is waiting; decisions for one user are serialised by an
 * advisory lock. A run that must wait records `queued_at` and sleeps in its workflow until
 * a run of the user that ends wakes it (releaseSlot names the oldest waiters that fit).
 */
export async function claimSlot(deps: Pick<ExecutionDeps, 'orm' | 'runners'>, input: ClaimSlotInput): Promise<ClaimSlotResult> {
  return deps.orm.em.fork().transactional(async (em) => {
    const repo = new ExecutionRepository(em);
    if (input.limit !== null) await repo.lockUserSlots(input.userId);
    const current = await repo.lock(input.executionId);
    if (!current) return { outcome: 'ended', status: 'GONE' };
    if (isTerminal(current.status) || current.status === 'CANCELLING') return { outcome: 'ended', status: current.status };
    if (current.slotHeld) return { outcome: 'granted' };
    if (input.limit !== null) {
      const held = await repo.countHeldSlots(input.userId);
      const ahead = held < input.limit ? await repo.countOlderWaiting(input.userId, current.startDate, current.id) : 0;
      if (held + ahead >= input.limit) {
        if (!current.queuedAt) {
          await repo.set(current.id, [`queued_at = ${nowSql}`], [], {});
          await new ExecutionLogRepository(em).append(current.id, current.attempt, [
            { level: 'INFO', text: `Waiting for a free slot: at most ${input.limit} runs of a user go at once`, seq: serviceLineSeq.queued },
          ]);
          await repo.notify(current.id);
        }
        return { outcome: 'waiting' };
      }
    }
    await repo.set(current.id, [`slot_held = ${input.limit !== null}`, "status = case when status = 'PENDING' then 'READY' else status end"], [], {});
    if (current.status === 'PENDING') await noteIfNoRunner(em, deps.runners, current.id, current.attempt);
    await repo.notify(current.id);
    return { outcome: 'granted' };
  });
}

/**
 * Whether a run being accepted (in the caller's transaction, before its row is inserted) can
 * take its slot at once: always without a limit; with one, when fewer than `limit` are held
 * and no run of the user waits (every other run is older). A granted run skips the claim in
 * its workflow; one that is not granted claims there, in turn.
 */
export async function grantOnAccept(em: EntityManager, userId: string, limit: number | null): Promise<boolean> {
  if (limit === null) return true;
  const repo = new ExecutionRepository(em);
  await repo.lockUserSlots(userId);
  if ((await repo.countHeldSlots(userId)) >= limit) return false;
  return !(await repo.anyWaiting(userId));
}

/** Gives a run's slot back; names the oldest waiting runs of the user that now fit. */
export async function releaseSlot(deps: Pick<ExecutionDeps, 'orm'>, input: ReleaseSlotInput): Promise<ReleaseSlotResult> {
  const { wake } = await giveSlotBack(deps, input);
  return { wake };
}

/** As `releaseSlot`, saying whether the run held a slot until now. */
export async function giveSlotBack(deps: Pick<ExecutionDeps, 'orm'>, input: ReleaseSlotInput): Promise<ReleaseSlotResult & { released: boolean }> {
  return deps.orm.em.fork().transactional(async (em) => {
    const repo = new ExecutionRepository(em);
    await repo.lockUserSlots(input.userId);
    const released = await em.execute<{ id: string }[]>('update execution set slot_held = false where id = ? and slot_held returning id', [input.executionId]);
    const held = await repo.countHeldSlots(input.userId);
    return { wake: await repo.oldestWaiting(input.userId, input.limit - held), released: released.length > 0 };
  });
}

/**
 * Ends a run the runner could not end: CANCELLED while it was being cancelled (or when asked
 * to), else FAILED, with the reason as a log line. A terminal status stays as it is.
 * CANCELLED sets progress 100, however a run is cancelled (as a runner's report and a PATCH
 * do); FAILED keeps the last progress the script reached.
 */
export async function endExecution(deps: Pick<ExecutionDeps, 'orm'>, input: EndExecutionInput): Promise<EndExecutionResult> {
  const { status } = await endRun(deps, input);
  return { status };
}

/** As `endExecution`, saying whether this call ended the run (false: it had ended, or is gone). */
export async function endRun(deps: Pick<ExecutionDeps, 'orm'>, input: EndExecutionInput): Promise<EndExecutionResult & { ended: boolean }> {
  return deps.orm.em.fork().transactional(async (em) => {
    const repo = new ExecutionRepository(em);
    const current = await repo.lock(input.executionId);
    if (!current) return { status: 'GONE', ended: false };
    if (isTerminal(current.status)) {
      // Ended from outside, and its runner ended without saying so: no more lines will come.
      if (current.runnerAttempt !== null) {
        await repo.releaseRunner(current.id, current.runnerAttempt);
        await repo.notify(current.id);
      }
      return { status: current.status, ended: false };
    }
    const status = input.status === 'CANCELLED' || current.status === 'CANCELLING' ? 'CANCELLED' : 'FAILED';
    const ended = ['status = ?', `end_date = ${nowSql}`, 'runner_attempt = null', ...(status === 'CANCELLED' ? ['progress = 100'] : [])];
    await repo.set(current.id, ended, [status], {});
    const text = status === 'CANCELLED' && input.status === 'FAILED' ? `Execution cancelled (${input.reason})` : input.reason;
    await new ExecutionLogRepository(em).append(current.id, current.attempt, [
      { level: status === 'FAILED' ? 'ERROR' : 'INFO', text, seq: status === 'FAILED' ? serviceLineSeq.failedByPlatform : serviceLineSeq.cancelled },
    ]);
    await repo.notify(current.id);
    return { status, ended: true };
  });
}
