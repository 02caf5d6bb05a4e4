import type { ServiceImpl } from '@connectrpc/connect';
import { create } from '@bufbuild/protobuf';
import type { MikroORM } from '@mikro-orm/postgresql';
import { InvalidArgument, NotFound } from '@gef/common';
import { unitOfWork } from '@gef/common/orm';
import { user } from '@gef/protos';
import { highestRole } from '../domain/roles';
import type { KeycloakAdminClient } from '../keycloak/admin-client';
import { toUserMessage } from '../mappers/user-mapper';
import { UserProfileRepository } from '../repositories/user-profile-repository';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface UserServiceDeps {
  orm: MikroORM;
  keycloak: KeycloakAdminClient;
}

/** gef.user.v1.UserService. */
export function userService(deps: UserServiceDeps): Partial<ServiceImpl<typeof user.UserService>> {
  return {
    async getUser(req) {
      const key = req.idOrEmail.trim();
      if (!key) throw new InvalidArgument('id_or_email is required');
      const profile = await unitOfWork(deps.orm, (em) => {
        const repo = new UserProfileRepository(em);
        return uuidPattern.test(key) ? repo.findById(key.toLowerCase()) : repo.findByEmail(key);
      });
      if (!profile) throw new NotFound('User not found', 'not_found');
      const roles = await deps.keycloak.getUserRealmRoles(profile.id);
      return create(user.GetUserResponseSchema, {
        user: toUserMessage(profile, highestRole(roles.map((r) => r.name))),
      });
    },

    async listUsers(req) {
      const page = Math.max(1, req.page || 1);
      const perPage = Math.min(100, Math.max(1, req.perPage || 20));
      const { items, total } = await unitOfWork(deps.orm, (em) => new UserProfileRepository(em).page(page, perPage));
      const [admins, superadmins] = await Promise.all([
        deps.keycloak.usersInRole('ADMIN'),
        deps.keycloak.usersInRole('SUPERADMIN'),
      ]);
      return create(user.ListUsersResponseSchema, {
        users: items.map((p) =>
          toUserMessage(p, superadmins.has(p.id) ? 'SUPERADMIN' : admins.has(p.id) ? 'ADMIN' : 'USER'),
        ),
        page,
        perPage,
        total: BigInt(total),
      });
    },
  };
}
