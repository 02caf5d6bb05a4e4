import { user } from '@gef/protos';
import type { Actor, RoleName } from '../domain/actor';

const roles: Partial<Record<user.Role, RoleName>> = {
  [user.Role.USER]: 'USER',
  [user.Role.ADMIN]: 'ADMIN',
  [user.Role.SUPERADMIN]: 'SUPERADMIN',
};

/** The gateway's caller as an actor; undefined when anonymous. */
export function actorFromCaller(caller: user.Caller | undefined): Actor | undefined {
  if (!caller?.userId) return undefined;
  return { userId: caller.userId.toLowerCase(), role: roles[caller.role] ?? 'USER' };
}
