import type { ServiceImpl } from '@connectrpc/connect';
import { create } from '@bufbuild/protobuf';
import { Unauthenticated } from '@gef/common';
import { user } from '@gef/protos';
import type { Actor } from '../domain/policy';
import type { Users } from '../domain/users';
import type { RevocationHub } from '../revocations/revocation-hub';
import {
  actorFromCaller,
  roleFromProto,
  toRevocationMessage,
  toTokensMessage,
  toUserMessage,
} from '../mappers/user-mapper';

export interface UserServiceDeps {
  users: Users;
  revocations: RevocationHub;
}

function requireActor(caller: user.Caller | undefined): Actor {
  const actor = actorFromCaller(caller);
  if (!actor) throw new Unauthenticated('Authorization required', 'authorization_required');
  return actor;
}

/** gef.user.v1.UserService: maps messages to the Users domain and back. */
export function userService({ users, revocations }: UserServiceDeps): ServiceImpl<typeof user.UserService> {
  return {
    async getUser(req) {
      const view = await users.get(req.idOrEmail, actorFromCaller(req.caller));
      return create(user.GetUserResponseSchema, { user: toUserMessage(view) });
    },

    async listUsers(req) {
      const res = await users.list(actorFromCaller(req.caller), {
        filter: req.filter,
        sort: req.sort,
        page: req.page,
        perPage: req.perPage,
      });
      return create(user.ListUsersResponseSchema, {
        users: res.users.map(toUserMessage),
        page: res.page,
        perPage: res.perPage,
        total: BigInt(res.total),
      });
    },

    async createUser(req) {
      const view = await users.create(
        {
          email: req.email,
          name: req.name,
          // Absent: a link to set one is mailed. Present, even empty: the policy decides.
          password: req.password,
          country: req.country,
          institution: req.institution,
          role: roleFromProto(req.role) ?? 'USER',
          emailNotificationsEnabled: req.emailNotificationsEnabled,
        },
        actorFromCaller(req.caller),
      );
      return create(user.CreateUserResponseSchema, { user: toUserMessage(view) });
    },

    async updateUser(req) {
      const view = await users.update(
        req.idOrEmail,
        {
          ...(req.name !== undefined ? { name: req.name } : {}),
          ...(req.country !== undefined ? { country: req.country } : {}),
          ...(req.institution !== undefined ? { institution: req.institution } : {}),
          ...(roleFromProto(req.role) ? { role: roleFromProto(req.role) } : {}),
          ...(req.password !== undefined ? { password: req.password } : {}),
          ...(req.emailNotificationsEnabled !== undefined ? { emailNotificationsEnabled: req.emailNotificationsEnabled } : {}),
        },
        requireActor(req.caller),
        req.sessionId,
      );
      return create(user.UpdateUserResponseSchema, { user: toUserMessage(view) });
    },

    async changePassword(req) {
      const view = await users.changePassword(requireActor(req.caller), req.oldPassword, req.newPassword, req.sessionId);
      return create(user.ChangePasswordResponseSchema, { user: toUserMessage(view) });
    },

    async deleteUser(req) {
      const view = await users.delete(req.idOrEmail, requireActor(req.caller));
      return create(user.DeleteUserResponseSchema, { user: toUserMessage(view) });
    },

    async recoverPassword(req) {
      await users.recoverPassword(req.idOrEmail);
      return create(user.RecoverPasswordResponseSchema, {
        message: 'If the account exists, an e-mail with a link to reset the password has been sent.',
      });
    },

    async resetPassword(req) {
      const view = await users.resetPassword(req.token, req.password);
      return create(user.ResetPasswordResponseSchema, { user: toUserMessage(view) });
    },

    async login(req) {
      return create(user.LoginResponseSchema, { tokens: toTokensMessage(await users.login(req.email, req.password)) });
    },

    async refresh(req) {
      return create(user.RefreshResponseSchema, { tokens: toTokensMessage(await users.refresh(req.refreshToken)) });
    },

    async logout(req) {
      await users.logout(requireActor(req.caller), req.sessionId, req.refreshToken);
      return create(user.LogoutResponseSchema, { message: 'Successfully logged out' });
    },

    async logoutAll(req) {
      await users.logoutAll(requireActor(req.caller));
      return create(user.LogoutAllResponseSchema, { message: 'Successfully logged out from all sessions' });
    },

    async *watchRevocations(_req, ctx) {
      for await (const e of revocations.watch(ctx.signal)) {
        // `null`: in sync (or a keep-alive); an empty message says so.
        yield create(
          user.WatchRevocationsResponseSchema,
          e === null ? {} : 'revocation' in e ? { revocation: toRevocationMessage(e.revocation) } : { changedUserId: e.changedUserId },
        );
      }
    },
  };
}
