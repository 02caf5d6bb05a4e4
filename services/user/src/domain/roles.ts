/** The platform's roles, highest last. They are Keycloak realm roles. */
export const roleNames = ['USER', 'ADMIN', 'SUPERADMIN'] as const;
export type RoleName = (typeof roleNames)[number];

/** The highest of the platform's roles among a user's realm roles. */
export function highestRole(names: Iterable<string>): RoleName {
  const held = new Set(names);
  return held.has('SUPERADMIN') ? 'SUPERADMIN' : held.has('ADMIN') ? 'ADMIN' : 'USER';
}
