import { NotFound, PermissionDenied, Unauthenticated, uuidPattern } from '@gef/common';

export const roleNames = ['USER', 'ADMIN', 'SUPERADMIN'] as const;
export type RoleName = (typeof roleNames)[number];

/** A user as the gateway authenticated them. */
export interface Actor {
  userId: string;
  role: RoleName;
}

export const isAdmin = (actor: Actor): boolean => actor.role === 'ADMIN' || actor.role === 'SUPERADMIN';

/** Every user-facing RPC needs a caller. */
export function requireActor(actor: Actor | undefined): Actor {
  if (!actor) throw new Unauthenticated('Authorization required', 'authorization_required');
  return actor;
}

export const executionNotFound = () => new NotFound('Execution not found', 'not_found');

/** Reading an execution: its owner or ADMIN+; anyone else is told it does not exist. */
export function assertMayRead(actor: Actor, execution: { userId: string }): void {
  if (!isAdmin(actor) && execution.userId !== actor.userId) throw executionNotFound();
}

/**
 * Changing status, progress, results or the log by hand: ADMIN+ only (a USER may see their
 * own execution, so they get a 403; another user's is a 404).
 */
export function assertMayWrite(actor: Actor, execution: { userId: string }): void {
  if (isAdmin(actor)) return;
  assertMayRead(actor, execution);
  throw new PermissionDenied('Only administrators and the run itself may change an execution', 'forbidden');
}

export const isUuid = (value: string): boolean => uuidPattern.test(value);

/** An execution id from a request: a UUID (lower case), else NotFound. */
export function executionIdOf(id: string): string {
  const trimmed = id.trim();
  if (!isUuid(trimmed)) throw executionNotFound();
  return trimmed.toLowerCase();
}
