import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from '@gef/common';
import { unitOfWork } from '@gef/common/orm';
import type { KeycloakAdminClient } from '../keycloak/admin-client';
import { UserProfileRepository } from '../repositories/user-profile-repository';

export interface AdminAccount {
  email: string;
  password: string;
}

/**
 * Makes sure the first SUPERADMIN exists: in Keycloak (with its password and the
 * SUPERADMIN role) and as a profile. Safe to run at every start and from several
 * replicas at once.
 */
export async function ensureSuperAdmin(
  orm: MikroORM,
  keycloak: KeycloakAdminClient,
  account: AdminAccount,
  logger: Logger,
): Promise<string> {
  const email = account.email.toLowerCase();
  let existing = await keycloak.findUserByEmail(email);
  let id = existing?.id;
  if (!id) {
    try {
      id = await keycloak.createUser({ email, password: account.password });
      logger.info({ email }, 'created the first SUPERADMIN');
    } catch (err) {
      // Another replica may have created it in the meantime.
      existing = await keycloak.findUserByEmail(email);
      if (!existing) throw err;
      id = existing.id;
    }
  }
  const roles = await keycloak.getUserRealmRoles(id);
  if (!roles.some((r) => r.name === 'SUPERADMIN')) {
    await keycloak.addUserRealmRoles(id, [await keycloak.getRealmRole('SUPERADMIN')]);
  }
  const userId = id;
  await unitOfWork(orm, async (em) => {
    const repo = new UserProfileRepository(em);
    if (!(await repo.findById(userId))) {
      await em.getConnection().execute(
        `insert into user_profile (id, email, name) values (?, ?, ?) on conflict do nothing`,
        [userId, email, 'Administrator'],
      );
    }
  });
  return userId;
}
