/** The platform's roles, highest last. They are Keycloak realm roles. */
export const roleNames = ['USER', 'ADMIN', 'SUPERADMIN'] as const;
export type RoleName = (typeof roleNames)[number];
