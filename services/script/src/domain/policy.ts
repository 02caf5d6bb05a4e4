import { PermissionDenied, Unauthenticated } from '@gef/common';

export const roleNames = ['USER', 'ADMIN', 'SUPERADMIN'] as const;
export type RoleName = (typeof roleNames)[number];

/** Who asks, as the gateway authenticated them. */
export interface Actor {
  userId: string;
  role: RoleName;
}

/** Every script RPC needs a caller. */
export function requireActor(actor: Actor | undefined): Actor {
  if (!actor) throw new Unauthenticated('Authorization required', 'authorization_required');
  return actor;
}

export const isAdmin = (actor: Actor) => actor.role === 'ADMIN' || actor.role === 'SUPERADMIN';

/** Own and public scripts; ADMIN and SUPERADMIN see all. */
export function canSee(actor: Actor, script: { userId: string; public: boolean }): boolean {
  return isAdmin(actor) || script.public || script.userId === actor.userId;
}

/** Changing a visible script: its owner or ADMIN+, else PermissionDenied. */
export function assertMayChange(actor: Actor, script: { userId: string }): void {
  if (isAdmin(actor) || script.userId === actor.userId) return;
  throw new PermissionDenied('Only the owner or an administrator may change this script', 'forbidden');
}
