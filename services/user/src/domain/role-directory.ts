import type { KeycloakAdminClient } from '../keycloak/admin-client';
import { highestRole, type RoleName } from './roles';

const ttlMs = 2000;

/**
 * Who holds ADMIN and SUPERADMIN, read from Keycloak (the only place roles live) and
 * cached for two seconds; changes made through this service clear the cache at once.
 */
export class RoleDirectory {
  private cache: { at: number; admins: Set<string>; superadmins: Set<string> } | undefined;
  private pending: Promise<{ admins: Set<string>; superadmins: Set<string> }> | undefined;

  constructor(private readonly keycloak: KeycloakAdminClient) {}

  invalidate(): void {
    this.cache = undefined;
  }

  async holders(): Promise<{ admins: Set<string>; superadmins: Set<string> }> {
    if (this.cache && Date.now() - this.cache.at < ttlMs) return this.cache;
    this.pending ??= Promise.all([this.keycloak.usersInRole('ADMIN'), this.keycloak.usersInRole('SUPERADMIN')])
      .then(([admins, superadmins]) => {
        this.cache = { at: Date.now(), admins, superadmins };
        return this.cache;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }

  async roleOf(userId: string): Promise<RoleName> {
    const { admins, superadmins } = await this.holders();
    return superadmins.has(userId) ? 'SUPERADMIN' : admins.has(userId) ? 'ADMIN' : 'USER';
  }

  /** Straight from Keycloak, bypassing the cache (for decisions that change state). */
  async freshRoleOf(userId: string): Promise<RoleName> {
    const roles = await this.keycloak.getUserRealmRoles(userId);
    return highestRole(roles.map((r) => r.name));
  }
}
