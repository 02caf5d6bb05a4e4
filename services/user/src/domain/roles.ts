/** The platform's roles, highest last. They are Keycloak realm roles. */
export const roleNames = ['USER', 'ADMIN', 'SUPERADMIN'] as const;
export type RoleName = (typeof roleNames)[number];

/** The highest platform role among a user's realm role names; USER when none. */
export function highestRole(names: Iterable<string>): RoleName {
  let best = 0;
  for (const n of names) {
    const i = roleNames.indexOf(n as RoleName);
    if (i > best) best = i;
  }
  return roleNames[best]!;
}
