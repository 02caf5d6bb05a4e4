import type { MikroORM } from '@mikro-orm/postgresql';
import { InvalidArgument, type Logger, uuidPattern } from '@gef/common';
import { certainlyNotSent, type Mailer } from '../mail/mailer';
import { UserProfileSchema } from '../entities/user-profile';

const terminalStatuses = ['FINISHED', 'FAILED', 'CANCELLED'] as const;

/** A run that reached a terminal status. */
export interface ExecutionFinished {
  userId: string;
  executionId: string;
  scriptId: string;
  scriptName?: string;
  status: string;
}

/**
 * A mail being sent holds its notice this long; past it, a retry may send it again (the
 * mailer's own timeouts are well under it).
 */
const sendingLeaseSeconds = 120;

/**
 * The terminal-status e-mails of runs: only to users who opted in, and once per execution
 * (each sent notice is recorded by execution id; a retry finds it and sends nothing).
 */
export class ExecutionNotices {
  constructor(
    private readonly deps: { orm: MikroORM; mailer: Mailer; logger: Logger },
  ) {}

  /** Mails the run's owner if they opted in; true when this call sent the mail. */
  async executionFinished(notice: ExecutionFinished): Promise<boolean> {
    const status = notice.status.toUpperCase();
    if (!uuidPattern.test(notice.userId) || !uuidPattern.test(notice.executionId)) {
      throw new InvalidArgument('user_id and execution_id must be UUIDs', 'invalid_argument');
    }
    if (!(terminalStatuses as readonly string[]).includes(status)) {
      throw new InvalidArgument(`status must be one of ${terminalStatuses.join(', ')}`, 'invalid_argument');
    }
    const userId = notice.userId.toLowerCase();
    const executionId = notice.executionId.toLowerCase();
    const em = this.deps.orm.em.fork();
    const profile = await em.findOne(UserProfileSchema, { id: userId });
    if (!profile?.emailNotificationsEnabled) return false;

    const conn = em.getConnection();
    await conn.execute('insert into execution_notice (execution_id, user_id, status) values (?, ?, ?) on conflict (execution_id) do nothing', [
      executionId,
      userId,
      status,
    ]);
    // Take the notice unless it was sent, or another call is sending it right now.
    const claimed = await conn.execute<{ status: string }[]>(
      `update execution_notice set sending_since = now()
        where execution_id = ? and user_id = ? and sent_at is null
          and (sending_since is null or sending_since < now() - make_interval(secs => ?))
        returning status`,
      [executionId, userId, sendingLeaseSeconds],
    );
    const taken = claimed[0];
    if (!taken) return false;
    try {
      await this.deps.mailer.sendExecutionFinished(profile.email, profile.name, {
        executionId,
        scriptId: notice.scriptId,
        ...(notice.scriptName ? { scriptName: notice.scriptName } : {}),
        status: taken.status,
      });
    } catch (err) {
      if (!certainlyNotSent(err)) {
        // The server may have taken it (a timeout, a connection lost after the message): sending
        // again could mail the same notice every retry for a day. Counted as sent.
        this.deps.logger.warn({ err: String(err), executionId, userId }, 'the execution e-mail may not have been sent; not sending it again');
        await conn.execute('update execution_notice set sent_at = now(), sending_since = null where execution_id = ?', [executionId]);
        return true;
      }
      await conn.execute('update execution_notice set sending_since = null where execution_id = ? and sent_at is null', [executionId]).catch(() => undefined);
      this.deps.logger.warn({ err: String(err), executionId, userId }, 'could not send the execution e-mail');
      throw err;
    }
    await conn.execute('update execution_notice set sent_at = now(), sending_since = null where execution_id = ?', [executionId]);
    return true;
  }
}
