import { errorChain } from '@gef/common';
import type { EntityManager } from '@gef/common/orm';

/** The SQLSTATE of a run refused because its owner has been deleted (see migration 13). */
const ownerDeletedState = 'GEFD1';

/** The SQL condition an execution's insert checks its owner with (`?`: the user id). */
export const ownerAcceptsSql = 'execution_owner_accepts(?::uuid)';

/**
 * Users whose deletion has begun (table deleted_user): no run of theirs is accepted any
 * more. Recording one waits for the runs of the user being accepted (they hold the owner's
 * lock shared until they commit, `ownerAcceptsSql`), so once it is recorded every run of
 * the user there will ever be is stored.
 */
export class DeletedUserRepository {
  constructor(private readonly em: EntityManager) {}

  /** Records a user as deleted, in the caller's transaction (the lock is held until it ends). */
  async record(userId: string): Promise<void> {
    await this.em.execute("select pg_advisory_xact_lock(hashtextextended('execution-owner:' || ?::uuid::text, 0))", [userId]);
    await this.em.execute('insert into deleted_user (user_id) values (?) on conflict (user_id) do nothing', [userId]);
  }

  /** Whether an error (or one of its causes) is the refusal of a deleted user's run. */
  static refused(err: unknown): boolean {
    for (const e of errorChain(err)) if (e.code === ownerDeletedState || e.sqlState === ownerDeletedState) return true;
    return false;
  }
}
