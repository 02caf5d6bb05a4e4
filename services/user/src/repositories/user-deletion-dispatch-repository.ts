import type { EntityManager } from '@gef/common/orm';
import { outboxRetrySql, type OutboxStore } from '@gef/common/outbox';
import type { DeleteUserInput } from '@gef/workflows';

/** The NOTIFY channel on which rows that are added or become due are announced (the migration's trigger). */
export const userDeletionDispatchChannel = 'user_deletion_dispatch';

/** The outbox of deleteUser starts (table user_deletion_dispatch), one row per user. */
export class UserDeletionDispatchRepository implements OutboxStore<DeleteUserInput> {
  constructor(private readonly em?: EntityManager) {}

  /**
   * Records the deletion of a user, due only after `holdMs` (the request's own steps come
   * first). True when this call wrote the row; false when one was there already (a
   * deletion recorded and not yet started), which keeps its schedule.
   */
  async hold(userId: string, holdMs: number): Promise<boolean> {
    const rows = await this.em!.execute<{ user_id: string }[]>(
      `insert into user_deletion_dispatch (user_id, next_at) values (?, now() + ? * interval '1 millisecond')
       on conflict (user_id) do nothing returning user_id`,
      [userId, holdMs],
    );
    return rows.length > 0;
  }

  /**
   * The row of a user becomes due now (if it is not already); written again if another
   * request withdrew it meanwhile (its own refusal does not undo this request's deletion).
   */
  async release(userId: string): Promise<void> {
    await this.em!.execute(
      `insert into user_deletion_dispatch (user_id, next_at) values (?, now())
       on conflict (user_id) do update set next_at = now() where user_deletion_dispatch.next_at > now()`,
      [userId],
    );
  }

  /**
   * A user whose login was deleted in Keycloak (its admin console) is deleted everywhere:
   * their deletion becomes due now, if they still have a profile. True when it was recorded.
   */
  async dueIfProfile(userId: string): Promise<boolean> {
    const rows = await this.em!.execute<{ user_id: string }[]>(
      `insert into user_deletion_dispatch (user_id, next_at)
         select id, now() from user_profile where id = ?
       on conflict (user_id) do update set next_at = now() where user_deletion_dispatch.next_at > now()
       returning user_id`,
      [userId],
    );
    return rows.length > 0;
  }

  /** The deletion is not to happen after all: its row goes. */
  async withdraw(userId: string): Promise<void> {
    await this.em!.execute('delete from user_deletion_dispatch where user_id = ?', [userId]);
  }

  async claim(em: EntityManager, limit: number): Promise<{ key: string; item: DeleteUserInput | undefined }[]> {
    const rows = await em.execute<{ user_id: string }[]>(
      `select user_id from user_deletion_dispatch
        where next_at <= now()
        order by next_at, created_at
        limit ? for update skip locked`,
      [limit],
    );
    return rows.map((r) => ({ key: r.user_id, item: { userId: r.user_id } }));
  }

  async done(em: EntityManager, key: string): Promise<void> {
    await em.execute('delete from user_deletion_dispatch where user_id = ?', [key]);
  }

  async failed(em: EntityManager, key: string, error: string): Promise<void> {
    await em.execute(`update user_deletion_dispatch set attempts = attempts + 1, next_at = ${outboxRetrySql('attempts')}, last_error = ? where user_id = ?`, [
      error,
      key,
    ]);
  }

  async nextDue(em: EntityManager): Promise<Date | undefined> {
    const rows = await em.execute<{ next_at: Date | null }[]>('select min(next_at) as next_at from user_deletion_dispatch');
    return rows[0]?.next_at ? new Date(rows[0].next_at) : undefined;
  }
}
