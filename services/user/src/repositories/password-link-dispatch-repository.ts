import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@gef/common/orm';
import { outboxRetrySql, type OutboxStore } from '@gef/common/outbox';
import type { PasswordLinkRequest } from '@gef/workflows/activities';

/** The NOTIFY channel on which new outbox rows are announced (the migration's trigger). */
export const passwordLinkDispatchChannel = 'password_link_dispatch';

/** How a recovery request names the account: its id or its e-mail address (both lower case). */
export type AccountKey = { id: string } | { email: string };

/** The outbox of sendPasswordLink starts (table password_link_dispatch). */
export class PasswordLinkDispatchRepository implements OutboxStore<PasswordLinkRequest> {
  constructor(private readonly em?: EntityManager) {}

  /**
   * Records a recovery link for the account `key` names, if there is one: the lookup and the
   * insert are one statement, so the time it takes tells nothing about the account.
   */
  async addRecovery(key: AccountKey): Promise<void> {
    const [column, value] = 'id' in key ? ['id', key.id] : ['email', key.email];
    await this.em!.execute(
      `insert into password_link_dispatch (request_id, user_id, purpose) select ?, id, 'reset' from user_profile where ${column} = ?`,
      [randomUUID(), value],
    );
  }

  async claim(em: EntityManager, limit: number): Promise<{ key: string; item: PasswordLinkRequest | undefined }[]> {
    const rows = await em.execute<{ request_id: string; user_id: string; purpose: 'set' | 'reset' }[]>(
      `select request_id, user_id, purpose from password_link_dispatch
        where next_at <= now()
        order by next_at, created_at
        limit ? for update skip locked`,
      [limit],
    );
    return rows.map((r) => ({ key: r.request_id, item: { userId: r.user_id, purpose: r.purpose, requestId: r.request_id } }));
  }

  async done(em: EntityManager, key: string): Promise<void> {
    await em.execute('delete from password_link_dispatch where request_id = ?', [key]);
  }

  async failed(em: EntityManager, key: string, error: string): Promise<void> {
    await em.execute(`update password_link_dispatch set attempts = attempts + 1, next_at = ${outboxRetrySql('attempts')}, last_error = ? where request_id = ?`, [
      error,
      key,
    ]);
  }

  async nextDue(em: EntityManager): Promise<Date | undefined> {
    const rows = await em.execute<{ next_at: Date | null }[]>('select min(next_at) as next_at from password_link_dispatch');
    return rows[0]?.next_at ? new Date(rows[0].next_at) : undefined;
  }
}
