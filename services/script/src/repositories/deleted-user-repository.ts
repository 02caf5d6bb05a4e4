import type { EntityManager } from '@gef/common/orm';

/** The advisory lock of a script owner (SQL, `?`: the user id). */
const ownerLockKey = "hashtextextended('script-owner:' || ?::uuid::text, 0)";

/**
 * Users whose deletion has begun (table deleted_user): no script of theirs is stored any
 * more. Both calls hold the owner's lock until the caller's transaction ends: recording
 * exclusively (it waits for the uploads of the user being stored), checking shared
 * (uploads of one user do not wait for each other).
 */
export class DeletedUserRepository {
  constructor(private readonly em: EntityManager) {}

  /** Records a user as deleted. */
  async record(userId: string): Promise<void> {
    await this.em.execute(`select pg_advisory_xact_lock(${ownerLockKey})`, [userId]);
    await this.em.execute('insert into deleted_user (user_id) values (?) on conflict (user_id) do nothing', [userId]);
  }

  /** Whether a user is recorded as deleted; a recording under way is waited for. */
  async isDeleted(userId: string): Promise<boolean> {
    await this.em.execute(`select pg_advisory_xact_lock_shared(${ownerLockKey})`, [userId]);
    // A statement of its own: its snapshot is taken once the lock is held.
    const rows = await this.em.execute('select 1 from deleted_user where user_id = ?', [userId]);
    return rows.length > 0;
  }
}
