import type { MikroORM } from '@mikro-orm/postgresql';
import { unitOfWork } from '@gef/common/orm';
import type { UserActivities } from '@gef/workflows/activities';
import type { ExecutionNotices } from '../domain/execution-notices';
import type { PasswordLinks } from '../domain/password-links';
import type { KeycloakAdminClient } from '../keycloak/admin-client';
import { UserProfileRepository } from '../repositories/user-profile-repository';

/** The user service's activities, run by its worker on the `gef-user` task queue. */
export function createUserActivities(orm: MikroORM, keycloak: KeycloakAdminClient, notices: ExecutionNotices, passwordLinks: PasswordLinks): UserActivities {
  return {
    async deleteKeycloakUser(userId) {
      return { deleted: await keycloak.deleteUser(userId) };
    },
    async deleteUserProfile(userId) {
      return { deleted: await unitOfWork(orm, (em) => new UserProfileRepository(em).deleteById(userId)) };
    },
    async notifyExecutionFinished(notice) {
      return { sent: await notices.executionFinished(notice) };
    },
    sendPasswordLink: (request) => passwordLinks.deliver(request),
  };
}
