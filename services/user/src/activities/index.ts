import type { MikroORM } from '@mikro-orm/postgresql';
import { ApplicationFailure } from '@temporalio/activity';
import { unitOfWork } from '@gef/common/orm';
import type { UserActivities } from '@gef/workflows/activities';
import type { ExecutionNotices } from '../domain/execution-notices';
import type { PasswordLinks } from '../domain/password-links';
import type { KeycloakAdminClient } from '../keycloak/admin-client';
import { permanentRefusal } from '../mail/mailer';
import { UserProfileRepository } from '../repositories/user-profile-repository';
import type { RevocationHub } from '../revocations/revocation-hub';

/** The user service's activities, run by its worker on the `gef-user` task queue. */
export function createUserActivities(
  orm: MikroORM,
  keycloak: KeycloakAdminClient,
  revocations: Pick<RevocationHub, 'revokeUser'>,
  notices: ExecutionNotices,
  passwordLinks: PasswordLinks,
): UserActivities {
  return {
    async deleteKeycloakUser(userId) {
      const deleted = await keycloak.deleteUser(userId);
      // Its tokens go with it, also when the request that recorded the deletion died before
      // revoking them (the workflow then started from the outbox).
      await revocations.revokeUser(userId);
      return { deleted };
    },
    async deleteUserProfile(userId) {
      return { deleted: await unitOfWork(orm, (em) => new UserProfileRepository(em).deleteById(userId)) };
    },
    async notifyExecutionFinished(notice) {
      return { sent: await mailing(() => notices.executionFinished(notice)) };
    },
    sendPasswordLink: (request) => mailing(() => passwordLinks.deliver(request)),
  };
}

/**
 * An e-mail whose recipient the mail server refused for good (`permanentRefusal`: a 5xx reply
 * to RCPT TO) is not tried again: retried, an address that does not exist would be asked
 * about for a day. The failure names the reply code only (the server's words may hold the
 * address, and it is kept in Temporal's history).
 */
async function mailing<T>(send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (err) {
    const code = permanentRefusal(err);
    if (code !== undefined) throw ApplicationFailure.nonRetryable(`the mail server refused the e-mail for good (SMTP ${code})`, 'MailRefused');
    throw err;
  }
}
