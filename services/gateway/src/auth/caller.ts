import { create } from '@bufbuild/protobuf';
import { user } from '@gef/protos';
import type { Principal, RoleName } from './authenticator';

const roleToProto: Record<RoleName, user.Role> = {
  USER: user.Role.USER,
  ADMIN: user.Role.ADMIN,
  SUPERADMIN: user.Role.SUPERADMIN,
};

/** The authenticated caller as the services' Caller message. */
export function callerOf(principal: Principal | undefined): user.Caller | undefined {
  if (!principal) return undefined;
  return create(user.CallerSchema, { userId: principal.userId, role: roleToProto[principal.role] });
}

/** A role name from the API as the proto enum; undefined for anything else. */
export function roleFromName(name: string | undefined): user.Role | undefined {
  if (name === undefined) return undefined;
  const upper = name.toUpperCase() as RoleName;
  return roleToProto[upper];
}

export function roleName(role: user.Role): RoleName {
  return role === user.Role.SUPERADMIN ? 'SUPERADMIN' : role === user.Role.ADMIN ? 'ADMIN' : 'USER';
}
