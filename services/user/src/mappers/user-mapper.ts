import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { user } from '@gef/protos';
import type { Actor } from '../domain/policy';
import type { RoleName } from '../domain/roles';
import type { UserView } from '../domain/users';
import type { KeycloakTokens } from '../keycloak/token-client';
import type { RevocationRecord } from '../revocations/revocation-hub';

const roleToProto: Record<RoleName, user.Role> = {
  USER: user.Role.USER,
  ADMIN: user.Role.ADMIN,
  SUPERADMIN: user.Role.SUPERADMIN,
};

/** The proto role as a role name; UNSPECIFIED is undefined. */
export function roleFromProto(role: user.Role): RoleName | undefined {
  switch (role) {
    case user.Role.USER:
      return 'USER';
    case user.Role.ADMIN:
      return 'ADMIN';
    case user.Role.SUPERADMIN:
      return 'SUPERADMIN';
    default:
      return undefined;
  }
}

/** The gateway's caller as an actor; undefined when anonymous. */
export function actorFromCaller(caller: user.Caller | undefined): Actor | undefined {
  if (!caller?.userId) return undefined;
  return { userId: caller.userId.toLowerCase(), role: roleFromProto(caller.role) ?? 'USER' };
}

/** A user as the public User message. */
export function toUserMessage(view: UserView): user.User {
  const { profile, role } = view;
  return create(user.UserSchema, {
    id: profile.id,
    email: profile.email,
    name: profile.name,
    country: profile.country,
    institution: profile.institution,
    role: roleToProto[role],
    createdAt: timestampFromDate(profile.createdAt),
    updatedAt: timestampFromDate(profile.updatedAt),
    emailNotificationsEnabled: profile.emailNotificationsEnabled,
  });
}

export function toTokensMessage(tokens: KeycloakTokens): user.Tokens {
  return create(user.TokensSchema, {
    accessToken: tokens.accessToken,
    refreshToken: tokens.refreshToken,
    expiresIn: tokens.expiresIn,
    userId: tokens.userId,
  });
}

export function toRevocationMessage(r: RevocationRecord): user.Revocation {
  return create(user.RevocationSchema, {
    id: BigInt(r.id),
    target: r.userId ? { case: 'userId', value: r.userId } : { case: 'sessionId', value: r.sessionId ?? '' },
    notBefore: timestampFromDate(r.notBefore),
    expiresAt: timestampFromDate(r.expiresAt),
  });
}
