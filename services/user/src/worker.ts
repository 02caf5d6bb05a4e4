import type { Logger } from '@gef/common';
import { SupervisedWorker, type TemporalSettings } from '@gef/common/temporal';
import { taskQueues } from '@gef/workflows/task-queues';
import type { MikroORM } from '@mikro-orm/postgresql';
import { createUserActivities } from './activities';
import type { ExecutionNotices } from './domain/execution-notices';
import type { PasswordLinks } from './domain/password-links';
import type { KeycloakAdminClient } from './keycloak/admin-client';
import type { RevocationHub } from './revocations/revocation-hub';

/**
 * The user service's Temporal worker: the deleteUser and sendPasswordLink workflows and the
 * user activities (the deletion steps, the runs' terminal-status e-mails, password links
 * the mail server did not take at once).
 */
export function createWorker(
  settings: TemporalSettings,
  orm: MikroORM,
  keycloak: KeycloakAdminClient,
  revocations: Pick<RevocationHub, 'revokeUser'>,
  notices: ExecutionNotices,
  passwordLinks: PasswordLinks,
  logger: Logger,
) {
  return new SupervisedWorker(
    settings,
    {
      taskQueue: taskQueues.user,
      workflowsPath: require.resolve('@gef/workflows'),
      activities: createUserActivities(orm, keycloak, revocations, notices, passwordLinks),
    },
    logger,
  );
}
