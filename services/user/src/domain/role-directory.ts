import type { Logger } from '@gef/common';
import type { KeycloakAdminClient } from '../keycloak/admin-client';
import { highestRole, type RoleName } from './roles';

type Holders = { admins: Set<string>; superadmins: Set<string> };

/** How long a read stays fresh (ms). */
const ttlMs = 2000;

export interface RoleDirectoryOptions {
  logger?: Logger;
  /** How old the last read may be and still stand in while Keycloak cannot answer (ms). */
  staleMs?: number;
  now?: () => number;
}

/**
 * Who holds ADMIN and SUPERADMIN in effect (directly, through a Keycloak group or through a
 * composite role: what their tokens carry), read from Keycloak (the only place roles live)
 * and cached for two seconds; changes made through this service clear the cache at once.
 *
 * While Keycloak cannot answer (restarting, unreachable), reads go on with the last holders
 * read, up to 15 minutes old, and Keycloak is asked again once the two seconds have passed:
 * a profile or a user list is still shown during a short outage instead of a 503. Roles
 * cannot change meanwhile (changing one needs Keycloak), and decisions that change state
 * read the user's roles from Keycloak itself (`currentRoleOf`).
 */
export class RoleDirectory {
  private cache: (Holders & { at: number }) | undefined;
  /** When Keycloak last failed while the cache stood in for it. */
  private failedAt: number | undefined;
  private pending: Promise<Holders> | undefined;
  private readonly staleMs: number;
  private readonly now: () => number;

  constructor(
    private readonly keycloak: Pick<KeycloakAdminClient, 'roleHolders' | 'getUserRealmRoles'>,
    private readonly options: RoleDirectoryOptions = {},
  ) {
    this.staleMs = options.staleMs ?? 15 * 60_000;
    this.now = options.now ?? Date.now;
  }

  invalidate(): void {
    this.cache = undefined;
    this.failedAt = undefined;
  }

  async holders(): Promise<Holders> {
    const now = this.now();
    if (this.cache && now - (this.failedAt ?? this.cache.at) < ttlMs) return this.cache;
    this.pending ??= this.keycloak
      .roleHolders(['ADMIN', 'SUPERADMIN'])
      .then(
        (held) => {
          const admins = held.get('ADMIN') ?? new Set<string>();
          const superadmins = held.get('SUPERADMIN') ?? new Set<string>();
          if (this.failedAt !== undefined) this.options.logger?.info('Keycloak answers again: roles read afresh');
          this.failedAt = undefined;
          this.cache = { at: this.now(), admins, superadmins };
          return this.cache;
        },
        (err: unknown) => {
          const last = this.cache;
          if (!last || this.now() - last.at > this.staleMs) throw err;
          if (this.failedAt === undefined) {
            this.options.logger?.warn({ err: String(err), ageMs: this.now() - last.at }, 'Keycloak does not answer: reads use the roles last read');
          }
          this.failedAt = this.now();
          return last;
        },
      )
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }

  /** A user's role as last read (at most two seconds old, longer while Keycloak is away). */
  async roleOf(userId: string): Promise<RoleName> {
    const { admins, superadmins } = await this.holders();
    return superadmins.has(userId) ? 'SUPERADMIN' : admins.has(userId) ? 'ADMIN' : 'USER';
  }

  /** A user's role read from Keycloak now (its effective realm roles), for decisions that change state. */
  async currentRoleOf(userId: string): Promise<RoleName> {
    return highestRole((await this.keycloak.getUserRealmRoles(userId)).map((r) => r.name));
  }
}
