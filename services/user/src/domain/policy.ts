import { PermissionDenied } from '@gef/common';
import type { RoleName } from './roles';

/** Who asks. `undefined` is anonymous. */
export interface Actor {
  userId: string;
  role: RoleName;
}

const rank: Record<RoleName, number> = { USER: 0, ADMIN: 1, SUPERADMIN: 2 };

/** May the actor see another user at all (else 404)? ADMIN sees USERs only; SUPERADMIN all. */
export function canSeeUser(actor: Actor | undefined, targetId: string, targetRole: RoleName): boolean {
  if (!actor) return false;
  if (actor.userId === targetId) return true;
  if (actor.role === 'SUPERADMIN') return true;
  return actor.role === 'ADMIN' && targetRole === 'USER';
}

/** May the actor list users? */
export function canListUsers(actor: Actor | undefined): boolean {
  return !!actor && rank[actor.role] >= rank.ADMIN;
}

/** Creating a user with a role above USER needs a SUPERADMIN. */
export function assertMayGrant(actor: Actor | undefined, role: RoleName): void {
  if (role === 'USER') return;
  if (actor?.role !== 'SUPERADMIN') throw new PermissionDenied(`Only a SUPERADMIN may grant ${role}`, 'forbidden');
}

/** Changing or deleting another user: ADMIN for USERs, SUPERADMIN for all. */
export function assertMayManage(actor: Actor, targetId: string, targetRole: RoleName): void {
  if (actor.userId === targetId) return;
  if (actor.role === 'SUPERADMIN') return;
  if (actor.role === 'ADMIN' && targetRole === 'USER') return;
  throw new PermissionDenied('Not allowed to change this user', 'forbidden');
}

/** DELETE /user/me is for USERs only: an admin account is removed by another SUPERADMIN. */
export function assertMayDeleteSelf(actor: Actor): void {
  if (actor.role !== 'USER') throw new PermissionDenied('Admin accounts cannot delete themselves', 'forbidden');
}
