import type { MikroORM } from '@mikro-orm/postgresql';
import { describeFailure, uuidPattern, type Logger } from '@gef/common';
import { KeycloakError, type KeycloakAdminClient, type KeycloakAdminEvent } from '../keycloak/admin-client';
import { UserDeletionDispatchRepository } from '../repositories/user-deletion-dispatch-repository';
import type { RevocationHub } from './revocation-hub';
import { secondsOf, type Seconds } from './token-lifetime';

/**
 * The admin events that can disable a user or change what their tokens carry, as two
 * reads: users changed, deleted or signed out (not created: registrations are most events),
 * and every change of role mappings (realm and client roles), group memberships, groups,
 * roles (realm and client: a client role may include ADMIN) and clients (a client deleted
 * takes its roles with it).
 */
const eventQueries = [
  // Deletions are read from the cursor however old it is: a user deleted in Keycloak while
  // this service was down is deleted everywhere all the same.
  { resourceTypes: ['USER'], operationTypes: ['DELETE'], wholeBacklog: true },
  { resourceTypes: ['USER'], operationTypes: ['UPDATE', 'ACTION'], wholeBacklog: false },
  {
    resourceTypes: ['REALM_ROLE_MAPPING', 'CLIENT_ROLE_MAPPING', 'GROUP_MEMBERSHIP', 'GROUP', 'REALM_ROLE', 'CLIENT_ROLE', 'CLIENT'],
    operationTypes: [],
    wholeBacklog: false,
  },
] as const;
const roleResources = new Set<string>(eventQueries[2].resourceTypes);
/** Whether an event may change who holds which role (a client's settings changed do not). */
const touchesRoles = (e: KeycloakAdminEvent): boolean =>
  roleResources.has(e.resourceType) && (e.resourceType !== 'CLIENT' || e.operationType === 'DELETE');
/** The roles whose holders are compared when a change names nobody. */
const watchedRoles = ['ADMIN', 'SUPERADMIN'] as const;
const pageSize = 100;

/** How long one poll's transaction may wait on Keycloak between its statements. */
export const pollIdleLimitMs = 15 * 60_000;
/** How often the realm's admin event settings are checked again. */
const ensureEveryMs = 60_000;

type Holders = Record<(typeof watchedRoles)[number], string[]>;

/** What one admin event means for tokens already issued. */
export type ChangeEffect =
  | { users: string[] }
  /** The roles mapped to a group changed: its members' and its subgroups' members'. */
  | { group: string }
  /** A user changed without a representation: whether they were disabled is read from Keycloak. */
  | { checkUser: string }
  /** Roles changed for users nobody named (a group deleted or moved, a composite role changed, a client deleted). */
  | { unnamed: true }
  | undefined;

const segment = (path: string, index: number): string | undefined => path.split('/')[index];

/** Reads an admin event: whose tokens it makes stale, if anyone's. */
export function effectOf(e: KeycloakAdminEvent): ChangeEffect {
  const path = e.resourcePath ?? '';
  switch (e.resourceType) {
    case 'USER': {
      const userId = segment(path, 0) === 'users' ? segment(path, 1) : undefined;
      if (!userId) return undefined;
      if (e.operationType === 'DELETE') return { users: [userId] };
      // Signed out in the console: Keycloak ends the sessions, not the access tokens.
      if (e.operationType === 'ACTION' && path === `users/${userId}/logout`) return { users: [userId] };
      if (e.operationType !== 'UPDATE' || path !== `users/${userId}`) return undefined;
      if (!e.representation) return { checkUser: userId };
      try {
        const rep = JSON.parse(e.representation) as { enabled?: unknown };
        return rep.enabled === false ? { users: [userId] } : undefined;
      } catch {
        return { checkUser: userId };
      }
    }
    case 'REALM_ROLE_MAPPING':
    case 'CLIENT_ROLE_MAPPING':
      if (e.operationType !== 'CREATE' && e.operationType !== 'DELETE') return undefined;
      if (segment(path, 0) === 'users' && segment(path, 1)) return { users: [segment(path, 1)!] };
      if (segment(path, 0) === 'groups' && segment(path, 1)) return { group: segment(path, 1)! };
      return undefined;
    case 'GROUP_MEMBERSHIP':
      return segment(path, 0) === 'users' && segment(path, 1) ? { users: [segment(path, 1)!] } : undefined;
    case 'GROUP':
    case 'REALM_ROLE':
    case 'CLIENT_ROLE':
      return { unnamed: true };
    case 'CLIENT':
      return e.operationType === 'DELETE' ? { unnamed: true } : undefined;
    default:
      return undefined;
  }
}

/** The user whose login an admin event deleted, if it did. */
export function deletedUserOf(e: KeycloakAdminEvent): string | undefined {
  const path = e.resourcePath ?? '';
  if (e.resourceType !== 'USER' || e.operationType !== 'DELETE' || segment(path, 0) !== 'users') return undefined;
  const userId = segment(path, 1);
  return userId && uuidPattern.test(userId) && path === `users/${userId}` ? userId : undefined;
}

/** Tokens carry `iat` in whole seconds: those of the second a change happened in are refused too. */
const cutOff = (time: number): Date => new Date(Math.floor(time / 1000) * 1000 + 1000);

export interface KeycloakChangesOptions {
  orm: MikroORM;
  keycloak: Pick<
    KeycloakAdminClient,
    'adminEvents' | 'ensureAdminEvents' | 'serviceAccountUserId' | 'getUser' | 'groupMemberIds' | 'roleHolders'
  >;
  revocations: Pick<RevocationHub, 'revokeUsersBefore'>;
  /** Told when roles may have changed, so reads of them start afresh. */
  onRolesChanged?: () => void;
  logger: Logger;
  /** How long an access token lives: changes older than that matter no more. */
  tokenLifetimeSeconds: Seconds;
  /** Between two reads of the admin events. */
  intervalMs?: number;
  /**
   * Every read starts this far before the latest event seen: an event is stamped before
   * Keycloak commits it, so one may become readable after a later one.
   */
  overlapMs?: number;
  now?: () => number;
}

/**
 * Follows Keycloak's admin events (changes made in the admin console or with its admin
 * API) and revokes the tokens of users they disable or whose roles they change, as the
 * API does for its own changes. Keycloak 26 has no push for these without an extension,
 * so the events are read every `intervalMs` from a cursor kept in the database: a restart
 * of this service resumes where it stopped, a restart of Keycloak is waited out, and a
 * change seen twice revokes once. One replica reads at a time (the cursor row is locked).
 */
export class KeycloakChanges {
  private readonly intervalMs: number;
  private readonly overlapMs: number;
  private readonly now: () => number;
  /** Events acted on within the overlap, by id. */
  private readonly seen = new Map<string, number>();
  private running: Promise<void> | undefined;
  private stopped = false;
  private sleeping: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private failing = false;
  private ensuredAt = -Infinity;
  private refusedSettings = false;

  /** How long an access token lives now (it may grow while the service runs). */
  private readonly tokenLifetimeSeconds: () => number;

  constructor(private readonly options: KeycloakChangesOptions) {
    this.tokenLifetimeSeconds = secondsOf(options.tokenLifetimeSeconds);
    this.intervalMs = options.intervalMs ?? 500;
    this.overlapMs = options.overlapMs ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Starts following in the background. */
  start(): void {
    this.stopped = false;
    this.running ??= this.loop().finally(() => {
      this.running = undefined;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.sleeping) {
      clearTimeout(this.sleeping.timer);
      this.sleeping.resolve();
    }
    await this.running;
  }

  private async loop(): Promise<void> {
    const { logger } = this.options;
    while (!this.stopped) {
      try {
        await this.ensureAdminEvents();
        await this.poll();
        if (this.failing) logger.info('Keycloak admin events are read again');
        this.failing = false;
      } catch (err) {
        if (!this.failing) logger.warn({ reason: describeFailure(err) }, 'cannot read Keycloak admin events; retrying');
        this.failing = true;
      }
      if (this.stopped) break;
      await new Promise<void>((resolve) => {
        this.sleeping = { timer: setTimeout(resolve, this.intervalMs), resolve };
      });
      this.sleeping = undefined;
    }
  }

  /** Turns on admin events with representations, at start and every minute (someone may turn them off). */
  private async ensureAdminEvents(): Promise<void> {
    if (this.now() - this.ensuredAt < ensureEveryMs) return;
    try {
      if (await this.options.keycloak.ensureAdminEvents()) {
        this.options.logger.info('admin events (with representations) turned on in the Keycloak realm');
      }
      this.refusedSettings = false;
    } catch (err) {
      if (!(err instanceof KeycloakError && err.status === 403)) throw err;
      if (!this.refusedSettings) {
        this.options.logger.error(
          'cannot turn on Keycloak admin events: the API client\'s service account lacks realm-management "manage-events". ' +
            'Grant it, or turn on "Save events" and "Include representation" under Realm settings → Events → Admin events settings; ' +
            'until then changes made in the Keycloak console do not revoke tokens',
        );
      }
      this.refusedSettings = true;
    }
    this.ensuredAt = this.now();
  }

  /**
   * One read: the events since the cursor, acted on, and the cursor moved past them.
   * Resolves to how many events were new (0 also when another replica holds the cursor).
   */
  async poll(): Promise<number> {
    const em = this.options.orm.em.fork();
    // Events acted on in this read count as seen once its cursor is committed: a read that
    // fails after acting on some leaves them to the next one, which acts on them again (a
    // revocation twice is one), and on a role change none of them named (`unnamed`).
    const seenNow = new Map<string, number>();
    const read = await em.transactional(async (tx) => {
      // The cursor's row stays locked while Keycloak is read (each request within its own
      // timeout), with nothing running on this connection meanwhile: a backlog of events
      // must not pass the service's idle-in-transaction limit, or the cursor never moves.
      await tx.execute(`select set_config('idle_in_transaction_session_timeout', '${pollIdleLimitMs}', true)`);
      const rows = await tx.execute<{ event_time: string | null; holders: Holders | null }[]>(
        'select event_time, holders from keycloak_event_cursor where id = 1 for update skip locked',
      );
      const row = rows[0];
      if (!row) return undefined;
      // Tokens issued before this have all expired: older changes need nothing, but deletions.
      const oldest = this.now() - (this.tokenLifetimeSeconds() + 60) * 1000;
      const stored = row.event_time === null ? oldest : Number(row.event_time);
      const cursor = Math.max(stored, oldest);
      const self = await this.options.keycloak.serviceAccountUserId();
      let latest = cursor;
      let fresh = 0;
      let rolesTouched = false;
      let unnamedAt: number | undefined;
      const events: KeycloakAdminEvent[] = [];
      for (const { wholeBacklog, ...query } of eventQueries) {
        const from = (wholeBacklog ? stored : cursor) - this.overlapMs;
        for (let first = 0; ; first += pageSize) {
          const page = await this.options.keycloak.adminEvents({ ...query, from, first, max: pageSize });
          events.push(...page);
          if (page.length < pageSize) break;
        }
      }
      events.sort((a, b) => a.time - b.time);
      for (const e of events) {
        const key = e.id ?? `${e.time}/${e.operationType}/${e.resourcePath ?? ''}`;
        latest = Math.max(latest, e.time);
        if (this.seen.has(key) || seenNow.has(key)) continue;
        if (touchesRoles(e)) rolesTouched = true;
        // The API's own changes revoke what they must as they are made.
        if (e.authDetails?.userId !== self) {
          const effect = effectOf(e);
          if (effect && 'unnamed' in effect) unnamedAt = Math.max(unnamedAt ?? 0, e.time);
          else if (effect) await this.revoke(effect, e);
          // Deleted in the console: their scripts, runs and profile go too (the deleteUser
          // workflow, from its outbox), in the transaction that moves the cursor past it.
          const deleted = deletedUserOf(e);
          if (deleted && (await new UserDeletionDispatchRepository(tx).dueIfProfile(deleted))) {
            this.options.logger.info({ userId: deleted, deletedAt: new Date(e.time).toISOString() }, 'a user deleted in Keycloak is being deleted everywhere');
          }
        }
        seenNow.set(key, e.time);
        fresh++;
      }
      let holders = row.holders;
      if (rolesTouched || holders === null) {
        this.options.onRolesChanged?.();
        const current = await this.options.keycloak.roleHolders(watchedRoles);
        const next = Object.fromEntries(watchedRoles.map((r) => [r, [...(current.get(r) ?? [])].sort()])) as Holders;
        if (unnamedAt !== undefined && holders !== null) {
          const changed = new Set<string>();
          for (const role of watchedRoles) {
            const before = new Set(holders[role] ?? []);
            const after = new Set(next[role]);
            for (const id of before) if (!after.has(id)) changed.add(id);
            for (const id of after) if (!before.has(id)) changed.add(id);
          }
          await this.revokeLogged([...changed], unnamedAt, 'roles changed by a group or role change');
        }
        holders = next;
      }
      await tx.execute('update keycloak_event_cursor set event_time = ?, holders = ?, updated_at = now() where id = 1', [
        latest,
        JSON.stringify(holders),
      ]);
      return { fresh, latest };
    });
    if (!read) return 0;
    for (const [key, time] of seenNow) this.seen.set(key, time);
    for (const [key, time] of this.seen) if (time < read.latest - this.overlapMs - 1000) this.seen.delete(key);
    return read.fresh;
  }

  private async revoke(effect: Exclude<ChangeEffect, undefined | { unnamed: true }>, e: KeycloakAdminEvent): Promise<void> {
    const what = `${e.operationType} ${e.resourceType} ${e.resourcePath ?? ''}`;
    if ('users' in effect) return this.revokeLogged(effect.users, e.time, what);
    if ('group' in effect) return this.revokeLogged(await this.options.keycloak.groupMemberIds(effect.group), e.time, what);
    const user = await this.options.keycloak.getUser(effect.checkUser);
    if (!user || !user.enabled) await this.revokeLogged([effect.checkUser], e.time, what);
  }

  private async revokeLogged(userIds: Iterable<string>, time: number, what: string): Promise<void> {
    const revoked = await this.options.revocations.revokeUsersBefore(userIds, cutOff(time));
    if (revoked.length > 0) this.options.logger.info({ users: revoked, change: what, changedAt: new Date(time).toISOString() }, 'tokens revoked after a change in Keycloak');
  }
}
