import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client as TemporalClient } from '@temporalio/client';
import { Unavailable, type Logger } from '@gef/common';
import { passwordLinkWorkflowId, sendPasswordLink } from '@gef/workflows';
import type { PasswordLinkRequest } from '@gef/workflows/activities';
import { taskQueues } from '@gef/workflows/task-queues';
import { certainlyNotSent, type Mailer } from '../mail/mailer';

/** How long a mailed link may be used. */
const tokenLifetimeMs = 60 * 60 * 1000;

/**
 * Recovery e-mails one account gets within a link's lifetime, however its callers name it
 * (the gateway's limit counts the id and the e-mail apart): more are not sent.
 */
export const maxRecoveryLinks = 5;

const insertToken = 'insert into password_token (digest, user_id, purpose, expires_at, request_id) values (?, ?, ?, ?, ?)';

const newToken = () => randomBytes(32).toString('base64url');

const tokenRow = (token: string, userId: string, purpose: 'set' | 'reset', requestId?: string) => [
  tokenDigest(token),
  userId,
  purpose,
  new Date(Date.now() + tokenLifetimeMs),
  requestId ?? null,
];

/** A token as stored: only its SHA-256 digest. */
export const tokenDigest = (token: string) => createHash('sha256').update(token).digest('hex');

export interface PasswordLinksDeps {
  orm: MikroORM;
  mailer: Pick<Mailer, 'sendSetPassword' | 'sendRecoverPassword'>;
  temporal: Pick<TemporalClient, 'workflow'>;
  logger: Logger;
}

interface Recipient {
  id: string;
  email: string;
  name: string;
}

/**
 * Single-use links to set or reset a password, mailed. A registration's link is mailed
 * while the request is answered; when the mail server does not take it, its delivery is
 * handed to Temporal (workflow `sendPasswordLink`), which retries until the server is back,
 * and the request still succeeds. A recovery's link is always delivered by that workflow,
 * started from an outbox after the answer, so the answer never waits on the account's
 * e-mail. Each delivery makes its own token when it sends, so no token ever enters
 * Temporal, and a link is valid for an hour from its e-mail. A token is removed only when
 * its e-mail certainly did not go out: a link that may have reached the user keeps working.
 */
export class PasswordLinks {
  constructor(private readonly deps: PasswordLinksDeps) {}

  /**
   * Mails a link now, or has Temporal mail it as soon as it can. Unavailable (503) only
   * when neither the mail server nor Temporal could take it. (Recovery links, capped per
   * account, go through `deliver` alone.) When the e-mail may have gone out all the same
   * (the server's answer lost after it took it), its token is kept, and the workflow mails
   * another link of the same request: both work, and using one uses the other.
   */
  async send(user: Recipient, purpose: 'set' | 'reset'): Promise<'sent' | 'later'> {
    const requestId = randomUUID();
    const token = await this.issue(user.id, purpose, requestId);
    try {
      await this.mail(user, purpose, token);
    } catch (mailErr) {
      await this.withdrawUnsent(token, mailErr);
      try {
        await this.startDelivery({ userId: user.id, purpose, requestId });
      } catch (startErr) {
        this.deps.logger.error({ err: String(mailErr), startErr: String(startErr), userId: user.id }, 'a password e-mail could be neither sent nor handed to Temporal');
        throw new Unavailable('The e-mail could not be sent; try again shortly', 'unavailable');
      }
      this.deps.logger.warn({ err: String(mailErr), userId: user.id, requestId }, 'the mail server did not take a password e-mail: Temporal sends it once it can');
      return 'later';
    }
    // Only a delivery of this request started later reads it; the e-mail is gone either way.
    await this.markMailed(token).catch((err: unknown) => this.deps.logger.warn({ err: String(err), userId: user.id }, 'could not record a password e-mail as sent'));
    return 'sent';
  }

  /** Starts the workflow `sendPasswordLink` of a request; one already started for it counts. */
  async startDelivery(request: PasswordLinkRequest): Promise<void> {
    try {
      await this.deps.temporal.workflow.start(sendPasswordLink, {
        taskQueue: taskQueues.user,
        workflowId: passwordLinkWorkflowId(request.requestId),
        args: [request],
      });
    } catch (err) {
      if (!(err instanceof Error && err.name === 'WorkflowExecutionAlreadyStartedError')) throw err;
    }
  }

  /**
   * The activity `sendPasswordLink`: one e-mail per request, however often it is retried.
   * Recovery links are capped: none is sent while `maxRecoveryLinks` other requests hold
   * unexpired links of the account (its own earlier tries do not count). A try that failed
   * may have mailed its link all the same (the mail server took it and its answer was lost,
   * or the process stopped before `mailed_at` was written): that token is kept, so the link
   * stays valid for its hour, and the retry mails a new link of the same request. Each link
   * is single-use, and using one uses the request's others (see `Users.resetPassword`).
   */
  async deliver(request: PasswordLinkRequest): Promise<{ sent: boolean }> {
    const conn = this.deps.orm.em.getConnection();
    const [prior] = await conn.execute<{ mailed: boolean | null }[]>('select bool_or(mailed_at is not null) as mailed from password_token where request_id = ?', [
      request.requestId,
    ]);
    if (prior?.mailed) return { sent: false };
    const [user] = await conn.execute<Recipient[]>('select id, email, name from user_profile where id = ?', [request.userId]);
    if (!user) return { sent: false };
    const token =
      request.purpose === 'reset'
        ? await this.issueWithin(user.id, 'reset', maxRecoveryLinks, request.requestId)
        : await this.issue(user.id, request.purpose, request.requestId);
    if (token === undefined) {
      this.deps.logger.info({ userId: user.id }, 'recovery e-mail not sent: the account had its share within the hour');
      return { sent: false };
    }
    try {
      await this.mail(user, request.purpose, token);
    } catch (err) {
      await this.withdrawUnsent(token, err);
      throw err;
    }
    await this.markMailed(token);
    return { sent: true };
  }

  /** A new token, stored as its digest. */
  private async issue(userId: string, purpose: 'set' | 'reset', requestId?: string): Promise<string> {
    const token = newToken();
    await this.deps.orm.em.getConnection().execute(insertToken, tokenRow(token, userId, purpose, requestId));
    return token;
  }

  /**
   * A new token unless `atMost` other requests (a token without a request counts as one)
   * hold unexpired tokens of this purpose for the user already: counted and inserted under
   * a lock of the user's, so concurrent requests cannot all pass the count. The request's
   * own earlier tries do not count against it.
   */
  private async issueWithin(userId: string, purpose: 'set' | 'reset', atMost: number, requestId: string): Promise<string | undefined> {
    return this.deps.orm.em.fork().transactional(async (em) => {
      const conn = em.getConnection();
      const tx = em.getTransactionContext();
      await conn.execute("select pg_advisory_xact_lock(hashtext('password_token:' || ?))", [userId], 'all', tx);
      const [count] = await conn.execute<{ n: string }[]>(
        `select count(distinct coalesce(request_id, digest)) as n from password_token
          where user_id = ? and purpose = ? and expires_at > now() and request_id is distinct from ?`,
        [userId, purpose, requestId],
        'all',
        tx,
      );
      if (Number(count?.n ?? 0) >= atMost) return undefined;
      const token = newToken();
      await conn.execute(insertToken, tokenRow(token, userId, purpose, requestId), 'all', tx);
      return token;
    });
  }

  /**
   * A token whose e-mail certainly did not go out is removed; one whose e-mail may have gone
   * out (the mail server's answer lost) is kept: its link may reach the user and must work.
   */
  private async withdrawUnsent(token: string, mailErr: unknown): Promise<void> {
    if (!certainlyNotSent(mailErr)) return;
    await this.deps.orm.em.getConnection().execute('delete from password_token where digest = ?', [tokenDigest(token)]);
  }

  /** Its e-mail went out: a later try of its request sends nothing. */
  private async markMailed(token: string): Promise<void> {
    await this.deps.orm.em.getConnection().execute('update password_token set mailed_at = now() where digest = ?', [tokenDigest(token)]);
  }

  private mail(user: Recipient, purpose: 'set' | 'reset', token: string): Promise<void> {
    return purpose === 'set' ? this.deps.mailer.sendSetPassword(user.email, token) : this.deps.mailer.sendRecoverPassword(user.email, token);
  }
}
