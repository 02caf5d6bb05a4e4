import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from '@gef/common';
import { unitOfWork } from '@gef/common/orm';
import type { KeycloakAdminClient } from '../keycloak/admin-client';
import { UserProfileRepository } from '../repositories/user-profile-repository';

export interface AdminAccount {
  email: string;
  password: string;
}

type AdminKeycloak = Pick<
  KeycloakAdminClient,
  | 'findUserByEmail'
  | 'getUser'
  | 'createUser'
  | 'getRealmRole'
  | 'getUserRealmRoles'
  | 'addUserRealmRoles'
  | 'realmRoleHasDirectMember'
  | 'roleHolders'
  | 'setPassword'
  | 'logoutUser'
>;

/**
 * Whether anyone holds SUPERADMIN in effect: mapped to it directly (one row asked for), else
 * through a group or a composite role.
 */
async function superAdminExists(keycloak: AdminKeycloak): Promise<boolean> {
  if (await keycloak.realmRoleHasDirectMember('SUPERADMIN')) return true;
  return ((await keycloak.roleHolders(['SUPERADMIN'])).get('SUPERADMIN')?.size ?? 0) > 0;
}

/**
 * The first SUPERADMIN, from GEF_ADMIN_EMAIL / GEF_ADMIN_PASSWORD. Only while the realm has
 * no SUPERADMIN at all (the first start, or every SUPERADMIN gone: the way back in) is the
 * account created and granted SUPERADMIN. Once one exists, the account is left as operators
 * made it: demoted or deleted, it stays so. An account Keycloak has without a profile gets
 * one. Safe at every start and from several replicas at once. Resolves to the account's id,
 * or undefined when it does not exist.
 */
export async function ensureSuperAdmin(
  orm: MikroORM,
  keycloak: AdminKeycloak,
  account: AdminAccount,
  logger: Logger,
  revoke?: (userId: string) => Promise<void>,
): Promise<string | undefined> {
  // One replica at a time (Keycloak fails one of two password changes of a user at once
  // with a 500): the next one finds what the first did.
  return orm.em.fork().transactional(async (em) => {
    await em.execute("select pg_advisory_xact_lock(hashtext('gef:ensure-superadmin'))");
    return ensureSuperAdminAlone(orm, keycloak, account, logger, revoke);
  });
}

async function ensureSuperAdminAlone(
  orm: MikroORM,
  keycloak: AdminKeycloak,
  account: AdminAccount,
  logger: Logger,
  revoke?: (userId: string) => Promise<void>,
): Promise<string | undefined> {
  const email = account.email.toLowerCase();
  if (await superAdminExists(keycloak)) {
    const existing = await keycloak.findUserByEmail(email);
    if (existing) await ensureProfile(orm, keycloak, existing.id, email, logger);
    return existing?.id;
  }

  const firstStart = (await orm.em.getConnection().execute<unknown[]>('select 1 from user_profile limit 1')).length === 0;
  let id = (await keycloak.findUserByEmail(email))?.id;
  const created = !id;
  if (!id) {
    try {
      id = await keycloak.createUser({ email, password: account.password });
    } catch (err) {
      // Another replica created it in the meantime.
      id = (await keycloak.findUserByEmail(email))?.id;
      if (!id) throw err;
    }
  }
  const holds = async (userId: string) => (await keycloak.getUserRealmRoles(userId)).some((r) => r.name === 'SUPERADMIN');
  if (!created && !(await holds(id))) {
    // A login at the address that this start did not make: anyone may have registered it
    // (the address is free once the bootstrap account is deleted). It gets SUPERADMIN only as
    // the operators' account: their password (GEF_ADMIN_PASSWORD), every session of whoever
    // held it ended and their tokens refused, before the role.
    const set = await keycloak.setPassword(id, account.password);
    if (!set.ok) throw new Error(`GEF_ADMIN_PASSWORD was refused by Keycloak's password policy: ${set.reason}`);
    await keycloak.logoutUser(id);
    await revoke?.(id);
    logger.warn({ email }, 'the bootstrap address had a login this start did not make: its password is GEF_ADMIN_PASSWORD now, and its sessions ended');
  }
  if (!(await holds(id))) {
    try {
      await keycloak.addUserRealmRoles(id, [await keycloak.getRealmRole('SUPERADMIN')]);
    } catch (err) {
      // Another replica granted it at the same moment (Keycloak refuses the second mapping).
      if (!(await holds(id))) throw err;
    }
  }
  if (firstStart) logger.info({ email }, 'created the first SUPERADMIN');
  else {
    logger.warn(
      { email, created },
      created
        ? 'the realm had no SUPERADMIN left: re-created the bootstrap account (GEF_ADMIN_EMAIL) as SUPERADMIN'
        : 'the realm had no SUPERADMIN left: granted SUPERADMIN to the bootstrap account (GEF_ADMIN_EMAIL) again',
    );
  }
  await ensureProfile(orm, keycloak, id, email, logger);
  return id;
}

/**
 * A profile for the account. A profile of the same address left by a login deleted in
 * Keycloak's console (its id unknown there) is replaced: the address belongs to this login now.
 */
async function ensureProfile(orm: MikroORM, keycloak: AdminKeycloak, id: string, email: string, logger: Logger): Promise<void> {
  const stale = await unitOfWork(orm, async (em) => {
    const repo = new UserProfileRepository(em);
    if (await repo.findById(id)) return undefined;
    const other = await repo.findByEmail(email);
    return other?.id;
  });
  if (stale !== undefined) {
    if ((await keycloak.getUser(stale)) !== undefined) return;
    logger.warn({ email, staleId: stale }, 'replacing the profile of a deleted login with the bootstrap account\'s');
  }
  await orm.em.fork().transactional(async (em) => {
    const conn = em.getConnection();
    const tx = em.getTransactionContext();
    if (stale !== undefined) await conn.execute('delete from user_profile where id = ?', [stale], 'run', tx);
    await conn.execute('insert into user_profile (id, email, name) values (?, ?, ?) on conflict do nothing', [id, email, 'Administrator'], 'run', tx);
  });
}
