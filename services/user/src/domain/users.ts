import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client as TemporalClient } from '@temporalio/client';
import {
  AlreadyExists,
  describeError,
  FailedPrecondition,
  type FieldMap,
  filterToSql,
  InvalidArgument,
  type Logger,
  NotFound,
  parseFilter,
  parsePaging,
  parseSort,
  PermissionDenied,
  sortToSql,
  Unauthenticated,
  Unavailable,
  Unprocessable,
  uuidPattern,
} from '@gef/common';
import { unitOfWork } from '@gef/common/orm';
import { taskQueues } from '@gef/workflows/task-queues';
import { deleteUser as deleteUserWorkflow, deleteUserWorkflowId, type DeleteUserInput } from '@gef/workflows';
import type { UserProfile } from '../entities/user-profile';
import { KeycloakError, type KeycloakAdminClient } from '../keycloak/admin-client';
import { unverifiedClaims, type KeycloakTokenClient, type KeycloakTokens } from '../keycloak/token-client';
import { PasswordLinkDispatchRepository } from '../repositories/password-link-dispatch-repository';
import { UserDeletionDispatchRepository } from '../repositories/user-deletion-dispatch-repository';
import { UserProfileRepository } from '../repositories/user-profile-repository';
import type { RevocationHub } from '../revocations/revocation-hub';
import { assertMayDeleteSelf, assertMayGrant, assertMayManage, canListUsers, canSeeUser, type Actor } from './policy';
import { lockoutMinutesRemaining } from './lockout';
import { tokenDigest, type PasswordLinks } from './password-links';
import type { RoleDirectory } from './role-directory';
import { Registrations } from './registrations';
import { roleNames, type RoleName } from './roles';
import { normaliseEmail, passwordPolicyViolation, profileLimits, profileText } from './validation';

export interface UserView {
  profile: UserProfile;
  role: RoleName;
}

export interface UsersDeps {
  orm: MikroORM;
  keycloak: KeycloakAdminClient;
  tokens: KeycloakTokenClient;
  passwordLinks: PasswordLinks;
  revocations: RevocationHub;
  roles: RoleDirectory;
  temporal: TemporalClient;
  logger: Logger;
}

/** Fields of `filter` and `sort` on users. */
export const userListFields: FieldMap = {
  id: { column: 'p.id', type: 'uuid' },
  email: { column: 'p.email', type: 'string' },
  name: { column: 'p.name', type: 'string' },
  country: { column: 'p.country', type: 'string' },
  institution: { column: 'p.institution', type: 'string' },
  role: { column: 'p.role', type: 'enum', values: ['USER', 'ADMIN', 'SUPERADMIN'], sortable: false },
  created_at: { column: 'p.created_at', type: 'date' },
  updated_at: { column: 'p.updated_at', type: 'date' },
};

/**
 * How long a deletion's outbox row waits for the request that wrote it to disable the login
 * and revoke the tokens before the dispatcher may start the workflow anyway (the request
 * died halfway): far longer than those steps may take (Keycloak's calls time out after 10 s
 * each). The request makes it due at once when it is done.
 */
export const deletionHoldMs = 5 * 60_000;

/** The roles whose direct mappings a role change replaces (USER is every account's). */
const elevatedRoles: readonly RoleName[] = ['ADMIN', 'SUPERADMIN'];

/** Runs `withdraw` up to three times; Unavailable when it never succeeds. */
async function withdrawOrUnavailable(withdraw: () => Promise<void>, logger: Logger, userId: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await withdraw();
    } catch (err) {
      if (attempt >= 3) {
        logger.error({ err: describeError(err), userId }, 'user deletion: Keycloak refused it, but its outbox row could not be removed; it will happen when its hold ends');
        throw new Unavailable('The deletion could not be undone after Keycloak refused it; it may still happen', 'unavailable');
      }
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

/** Keycloak refused a request (4xx). */
const isRefusal = (err: unknown): boolean => err instanceof KeycloakError && err.status >= 400 && err.status < 500;

/**
 * Keycloak's part of a change to one user. A 404 there means the user was deleted meanwhile
 * (the deletion removes the login before the profile): the caller gets a 404, not a failure.
 * So does another refusal (4xx) once Keycloak no longer has the user: a change racing the
 * removal is answered 400 ("Could not update user!") as often as 404.
 */
async function whileUserExists<T>(
  keycloak: Pick<KeycloakAdminClient, 'getUser'>,
  userId: string,
  work: () => Promise<T>,
  notFound = 'User not found',
): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof KeycloakError && err.status === 404) throw new NotFound(notFound, 'not_found');
    if (isRefusal(err) && (await keycloak.getUser(userId).catch(() => null)) === undefined) {
      throw new NotFound(notFound, 'not_found');
    }
    throw err;
  }
}

/** The user rules of the contract (§2–§4), over Keycloak and the profile table. */
export class Users {
  /** Registrations under way, so that one that dies halfway leaves nothing for good. */
  readonly registrations: Registrations;

  constructor(private readonly deps: UsersDeps) {
    this.registrations = new Registrations(deps);
  }

  private repo<T>(fn: (repo: UserProfileRepository) => Promise<T>): Promise<T> {
    return unitOfWork(this.deps.orm, (em) => fn(new UserProfileRepository(em)));
  }

  /** Finds a profile by id, e-mail or `me`. */
  private async findProfile(key: string, actor: Actor | undefined): Promise<UserProfile | null> {
    const k = key.trim();
    if (k === 'me') {
      if (!actor) throw new Unauthenticated('Authorization required', 'authorization_required');
      return this.repo((r) => r.findById(actor.userId));
    }
    if (uuidPattern.test(k)) return this.repo((r) => r.findById(k.toLowerCase()));
    if (k.includes('@') && k.length <= 254) return this.repo((r) => r.findByEmail(k));
    return null;
  }

  /** A user the actor may see, else 404. */
  async get(key: string, actor: Actor | undefined): Promise<UserView> {
    const profile = await this.findProfile(key, actor);
    if (!profile) throw new NotFound('User not found', 'not_found');
    const role = await this.deps.roles.roleOf(profile.id);
    if (!canSeeUser(actor, profile.id, role)) throw new NotFound('User not found', 'not_found');
    return { profile, role };
  }

  /**
   * A user the actor may see, for a change or a deletion: another user's role is read from
   * Keycloak now (effective roles, groups and composite roles included), not from the cache.
   */
  private async getForChange(key: string, actor: Actor): Promise<UserView> {
    const target = await this.get(key, actor);
    if (target.profile.id === actor.userId) return target;
    const role = await this.deps.roles.currentRoleOf(target.profile.id);
    if (!canSeeUser(actor, target.profile.id, role)) throw new NotFound('User not found', 'not_found');
    return { profile: target.profile, role };
  }

  async list(
    actor: Actor | undefined,
    query: { filter?: string; sort?: string; page?: number; perPage?: number },
  ): Promise<{ users: UserView[]; page: number; perPage: number; total: number }> {
    if (!canListUsers(actor)) throw new PermissionDenied('Only administrators may list users', 'forbidden');
    const filter = parseFilter(query.filter, userListFields);
    const sort = parseSort(query.sort, userListFields);
    const paging = parsePaging(query.page, query.perPage);
    const { admins, superadmins } = await this.deps.roles.holders();
    const adminIds = [...admins].filter((id) => !superadmins.has(id));
    const superIds = [...superadmins];
    // The role of each row, computed in SQL from Keycloak's role holders.
    const roleSql = `case when p.id = any(?::uuid[]) then 'SUPERADMIN' when p.id = any(?::uuid[]) then 'ADMIN' else 'USER' end`;
    const where = filterToSql(filter, userListFields);
    const visibility = actor!.role === 'SUPERADMIN' ? 'true' : `(p.role = 'USER' or p.id = ?)`;
    const visibilityParams = actor!.role === 'SUPERADMIN' ? [] : [actor!.userId];
    const base = `from (select p.*, ${roleSql} as role from user_profile p) p where ${where.sql} and ${visibility}`;
    // Arrays travel as PostgreSQL array literals (the driver would expand a JS array into a list).
    const uuidArray = (ids: string[]) => `{${ids.filter((id) => uuidPattern.test(id)).join(',')}}`;
    const params = [uuidArray(superIds), uuidArray(adminIds), ...where.params, ...visibilityParams];
    const conn = this.deps.orm.em.getConnection();
    const [rows, count] = await Promise.all([
      conn.execute<(Record<string, unknown> & { role: RoleName })[]>(
        `select p.* ${base} order by ${sortToSql(sort, userListFields, 'p.created_at asc', 'p.id asc')} limit ? offset ?`,
        [...params, paging.perPage, paging.offset],
      ),
      conn.execute<{ n: string }[]>(`select count(*) as n ${base}`, params),
    ]);
    return {
      users: rows.map((r) => ({
        profile: {
          id: String(r['id']),
          email: String(r['email']),
          name: String(r['name']),
          country: String(r['country']),
          institution: String(r['institution']),
          emailNotificationsEnabled: r['email_notifications_enabled'] === true,
          createdAt: new Date(r['created_at'] as string),
          updatedAt: new Date(r['updated_at'] as string),
        } as UserProfile,
        role: r.role,
      })),
      page: paging.page,
      perPage: paging.perPage,
      total: Number(count[0]?.n ?? 0),
    };
  }

  async create(
    input: {
      email: string;
      name: string;
      password?: string;
      country?: string;
      institution?: string;
      role?: RoleName;
      emailNotificationsEnabled?: boolean;
    },
    actor: Actor | undefined,
  ): Promise<UserView> {
    const email = normaliseEmail(input.email);
    const name = profileText('name', input.name, profileLimits.name, true);
    const country = profileText('country', input.country ?? '', profileLimits.country);
    const institution = profileText('institution', input.institution ?? '', profileLimits.institution);
    const role = input.role ?? 'USER';
    assertMayGrant(actor, role);
    // Any password given, even an empty one, must pass the policy; only none at all means a mailed link.
    if (input.password !== undefined) {
      const weak = passwordPolicyViolation(input.password);
      if (weak) throw new Unprocessable(weak, 'weak_password');
    }
    if (await this.repo((r) => r.findByEmail(email))) throw new AlreadyExists('A user with this email already exists', 'already_exists');

    const registration = await this.registrations.begin(email);
    let id: string;
    try {
      // The profile (name included) lives here; Keycloak keeps only the login.
      id = await this.deps.keycloak.createUser({ email, ...(input.password !== undefined ? { password: input.password } : {}) });
    } catch (err) {
      // Refused: Keycloak made nothing. Anything else (no answer, an error) may have made the login.
      const refused = err instanceof KeycloakError && (err.status === 409 || err.status === 400);
      await this.registrations.abandon(registration, !refused);
      if (err instanceof KeycloakError && err.status === 409) {
        throw new AlreadyExists('A user with this email already exists', 'already_exists');
      }
      if (err instanceof KeycloakError && err.status === 400) {
        // Keycloak names the attribute it refused: the address (as e-mail or user name), else the password.
        if (/"field"\s*:\s*"(email|username)"/.test(err.body)) throw new InvalidArgument('Invalid email address', 'invalid_argument');
        throw new Unprocessable('Password does not satisfy the password policy', 'weak_password');
      }
      throw err;
    }
    try {
      if (role !== 'USER') {
        await this.deps.keycloak.addUserRealmRoles(id, [await this.deps.keycloak.getRealmRole(role)]);
        this.deps.roles.invalidate();
      }
      const profile = await this.deps.orm.em.fork().transactional(async (em) => {
        const created = new UserProfileRepository(em).create({
          id,
          email,
          name,
          country,
          institution,
          emailNotificationsEnabled: input.emailNotificationsEnabled ?? false,
        });
        await this.registrations.end(em, registration);
        return created;
      });
      if (input.password === undefined) await this.deps.passwordLinks.send(profile, 'set');
      return { profile, role };
    } catch (err) {
      // Leave no half user behind.
      const loginDeleted = await this.deps.keycloak.deleteUser(id).then(
        () => true,
        () => false,
      );
      // The login may have been used meanwhile (it works from its creation on).
      if (loginDeleted) await this.revokeQuietly(id);
      await this.repo((r) => r.deleteById(id)).catch(() => undefined);
      // A login that could not be deleted keeps the registration's row: the next
      // registration of the address (or the sweep at start) removes it.
      await this.registrations.abandon(registration, !loginDeleted);
      if (err instanceof Error && /unique|duplicate/i.test(err.message)) {
        throw new AlreadyExists('A user with this email already exists', 'already_exists');
      }
      throw err;
    }
  }

  /** Refuses a removed login's tokens; a failure is logged (the login is gone, so no new token comes). */
  private async revokeQuietly(userId: string): Promise<void> {
    try {
      await this.deps.revocations.revokeUser(userId);
    } catch (err) {
      this.deps.logger.warn({ userId, reason: describeError(err) }, "could not refuse a removed login's tokens");
    }
  }

  async update(
    key: string,
    changes: {
      name?: string;
      country?: string;
      institution?: string;
      role?: RoleName;
      password?: string;
      emailNotificationsEnabled?: boolean;
    },
    actor: Actor,
    sessionId = '',
  ): Promise<UserView> {
    const target = await this.getForChange(key, actor);
    // Oneself, however named: `me`, the id or the e-mail.
    const self = target.profile.id === actor.userId;
    if (!self) assertMayManage(actor, target.profile.id, target.role);
    const name = changes.name !== undefined ? profileText('name', changes.name, profileLimits.name, true) : undefined;
    const country = changes.country !== undefined ? profileText('country', changes.country, profileLimits.country) : undefined;
    const institution =
      changes.institution !== undefined ? profileText('institution', changes.institution, profileLimits.institution) : undefined;
    const role = self ? undefined : changes.role;
    if (role && role !== target.role) {
      assertMayGrant(actor, role);
      if (target.role !== 'USER') assertMayGrant(actor, target.role);
    }
    if (changes.password !== undefined) {
      const weak = passwordPolicyViolation(changes.password);
      if (weak) throw new Unprocessable(weak, 'weak_password');
    }
    const profileChanged =
      (name !== undefined && name !== target.profile.name) ||
      (country !== undefined && country !== target.profile.country) ||
      (institution !== undefined && institution !== target.profile.institution) ||
      (changes.emailNotificationsEnabled !== undefined && changes.emailNotificationsEnabled !== target.profile.emailNotificationsEnabled);
    const roleChanged = role !== undefined && role !== target.role;
    // "Not updated" means nothing updatable was given (a role for oneself is ignored); values
    // equal to the stored ones (a profile saved unedited) are an update that changes nothing.
    const given =
      name !== undefined ||
      country !== undefined ||
      institution !== undefined ||
      role !== undefined ||
      changes.password !== undefined ||
      changes.emailNotificationsEnabled !== undefined;
    if (!given) throw new InvalidArgument('Not updated', 'not_updated');

    // A demotion Keycloak's direct mappings cannot carry out is refused before anything changes.
    if (roleChanged) await whileUserExists(this.deps.keycloak, target.profile.id, () => this.assertDemotable(target.profile.id, role!));
    if (changes.password !== undefined) {
      // As ChangePassword: whoever holds a session of the old password loses it, before the
      // change (a retry after a later step failed still ends them) and after it (sessions
      // opened meanwhile). Set for oneself, the session that asked stays open; a request that
      // names none (a gateway of an earlier version, a token without a session) ends none,
      // rather than the caller's own with the others.
      const endSessions = !self || sessionId !== '';
      const keep = self ? sessionId : '';
      if (endSessions) await this.endOtherSessions(target.profile.id, keep);
      const res = await whileUserExists(this.deps.keycloak, target.profile.id, () => this.deps.keycloak.setPassword(target.profile.id, changes.password!));
      if (!res.ok) throw new Unprocessable(res.reason, 'weak_password');
      if (endSessions) await this.endOtherSessions(target.profile.id, keep);
      await this.endPasswordLinks(target.profile.id);
    }
    if (roleChanged) {
      // Tokens carry roles: the old ones stop working, before the change as well as after
      // it. Were the revocation after the change to fail, a retry would find the role
      // changed already and revoke nothing; this one has refused the old tokens by then.
      await this.deps.revocations.revokeUser(target.profile.id, { wait: false });
      await whileUserExists(this.deps.keycloak, target.profile.id, async () => {
        const current = await this.deps.keycloak.getUserDirectRealmRoles(target.profile.id);
        const elevated = current.filter((r) => (elevatedRoles as readonly string[]).includes(r.name));
        await this.deps.keycloak.removeUserRealmRoles(target.profile.id, elevated);
        if (role !== 'USER') await this.deps.keycloak.addUserRealmRoles(target.profile.id, [await this.deps.keycloak.getRealmRole(role!)]);
      });
      this.deps.roles.invalidate();
      // And those issued while the change was made.
      await this.deps.revocations.revokeUser(target.profile.id);
    }
    let profile = target.profile;
    if (profileChanged || roleChanged || changes.password !== undefined) {
      profile = await unitOfWork(this.deps.orm, async (em) => {
        const p = await new UserProfileRepository(em).findById(target.profile.id);
        if (!p) throw new NotFound('User not found', 'not_found');
        if (name !== undefined) p.name = name;
        if (country !== undefined) p.country = country;
        if (institution !== undefined) p.institution = institution;
        if (changes.emailNotificationsEnabled !== undefined) p.emailNotificationsEnabled = changes.emailNotificationsEnabled;
        p.updatedAt = new Date();
        return p;
      });
    }
    return { profile, role: role ?? target.role };
  }

  /**
   * A role lower than the one held is reached by removing the direct mappings to ADMIN and
   * SUPERADMIN. A role above `to` that the user would still hold without them (through a
   * Keycloak group, or a composite role mapped otherwise) would stay: refused, so that
   * nothing changes and the answer does not claim a demotion that did not happen.
   */
  private async assertDemotable(userId: string, to: RoleName): Promise<void> {
    const above = (await this.deps.keycloak.getUserRealmRoles(userId))
      .map((r) => r.name)
      .filter((name): name is RoleName => (roleNames as readonly string[]).includes(name) && roleNames.indexOf(name as RoleName) > roleNames.indexOf(to));
    if (above.length === 0) return;
    const stillHeld = await this.deps.keycloak.roleHolders(above, { ignoringDirect: elevatedRoles });
    const kept = above.filter((name) => stillHeld.get(name)?.has(userId));
    if (kept.length > 0) {
      throw new FailedPrecondition(
        `The user holds ${kept.join(' and ')} through a Keycloak group or composite role: change it there (in Keycloak) to give them ${to}`,
        'role_granted_in_keycloak',
      );
    }
  }

  async changePassword(actor: Actor, oldPassword: string, newPassword: string, sessionId: string): Promise<UserView> {
    const me = await this.get('me', actor);
    const check = await this.deps.tokens.login(me.profile.email, oldPassword);
    if (!check.ok) throw new Unauthenticated('Old password is wrong', 'invalid_credentials');
    // The check opened a session of its own: close it.
    await this.deps.tokens.logout(check.tokens.refreshToken).catch(() => undefined);
    const weak = passwordPolicyViolation(newPassword);
    if (weak) throw new Unprocessable(weak, 'weak_password');
    // Every other session ends, before the password changes too: were a step after the change
    // to fail, a retry would find the old password wrong and could end nothing. After it, the
    // sessions opened meanwhile with the old password end as well.
    await this.endOtherSessions(me.profile.id, sessionId);
    const res = await whileUserExists(this.deps.keycloak, me.profile.id, () => this.deps.keycloak.setPassword(me.profile.id, newPassword));
    if (!res.ok) throw new Unprocessable(res.reason, 'weak_password');
    await this.endOtherSessions(me.profile.id, sessionId);
    await this.endPasswordLinks(me.profile.id);
    return me;
  }

  /**
   * Once a password is set, links mailed before (to set or reset it) are used up: one seen
   * by someone else (a forwarded e-mail) would take the account over for the rest of its hour.
   */
  private async endPasswordLinks(userId: string): Promise<void> {
    await this.deps.orm.em.getConnection().execute('update password_token set used_at = now() where user_id = ? and used_at is null', [userId]);
  }

  /** Ends every session of the user but `keep`, in Keycloak and for their access tokens. */
  private async endOtherSessions(userId: string, keep: string): Promise<void> {
    const sessions = await whileUserExists(this.deps.keycloak, userId, () => this.deps.keycloak.userSessions(userId));
    for (const s of sessions) {
      if (s.id === keep) continue;
      await this.deps.keycloak.deleteSession(s.id);
      await this.deps.revocations.revokeSession(s.id);
    }
  }

  /**
   * Disables a user's login in Keycloak; a user Keycloak no longer has needs none. The
   * profile outlives the login while a deletion is under way, so a second deletion of one
   * user may disable it just as the first one's workflow removes it from Keycloak, which then
   * answers 400 rather than 404 ("Could not update user!" when the removal commits under the
   * update, or the user's attributes refused as read half removed). A refusal (4xx) is
   * therefore no failure when the user is gone; for a user still there it is tried once more.
   */
  private async disableLogin(userId: string): Promise<void> {
    // Gone (a 404, or a refusal once Keycloak no longer has the user): nothing to disable.
    const disable = () =>
      whileUserExists(this.deps.keycloak, userId, () => this.deps.keycloak.updateUser(userId, { enabled: false })).catch((err: unknown) => {
        if (!(err instanceof NotFound)) throw err;
      });
    try {
      await disable();
    } catch (err) {
      if (!isRefusal(err)) throw err;
      try {
        await disable();
      } catch (again) {
        // Refused twice: a deletion under way (its removal not committed when asked) goes on.
        if (isRefusal(again) && (await this.deletionRunning(userId))) return;
        throw again;
      }
    }
  }

  /** Whether the user's delete workflow is running now. */
  private async deletionRunning(userId: string): Promise<boolean> {
    try {
      const info = await this.deps.temporal.workflow.getHandle(deleteUserWorkflowId(userId)).describe();
      return info.status.name === 'RUNNING';
    } catch {
      return false;
    }
  }

  /**
   * Deletes a user: the deletion is recorded first (outbox `user_deletion_dispatch`), so
   * that from then on it finishes whatever becomes of this request; then the login is
   * disabled and the tokens revoked, and the record is made due: the dispatcher starts the
   * `deleteUser` workflow once Temporal answers (the answer does not wait for it). A request
   * that dies halfway leaves its record held for `deletionHoldMs`, then the deletion goes
   * on; so does one that fails after recording it (Keycloak away: an error is answered, the
   * tokens are revoked all the same). Only a refusal of Keycloak's to disable the login
   * (nothing changed) withdraws it.
   */
  async delete(key: string, actor: Actor): Promise<UserView> {
    const target = await this.getForChange(key, actor);
    const self = target.profile.id === actor.userId;
    if (self) assertMayDeleteSelf(actor);
    else assertMayManage(actor, target.profile.id, target.role);
    const userId = target.profile.id;
    const dispatch = new UserDeletionDispatchRepository(this.deps.orm.em.fork());
    const recorded = await dispatch.hold(userId, deletionHoldMs);
    const settle = (change: Promise<void>) =>
      change.catch((err: unknown) => this.deps.logger.warn({ err: describeError(err), userId }, 'user deletion: could not update its outbox row; it is due when its hold ends'));
    // Logins and tokens stop now; the workflow removes the rest, surviving crashes.
    let failure: unknown;
    try {
      await this.disableLogin(userId);
    } catch (err) {
      // Keycloak refused: the login is as it was, and the deletion is not to happen after all.
      if (isRefusal(err)) {
        // The row must go, or the deletion would happen when its hold ends: tried a few
        // times; a row that cannot be removed answers 503 (the deletion may still happen).
        if (recorded) await withdrawOrUnavailable(() => dispatch.withdraw(userId), this.deps.logger, userId);
        throw err;
      }
      // Otherwise the login may be disabled already: the deletion goes on (its first step
      // removes the login), and this request still fails.
      failure = err;
    }
    try {
      await this.deps.revocations.revokeUser(userId);
    } finally {
      // Due now; a row this request could not release is due when its hold ends.
      await settle(dispatch.release(userId));
    }
    if (failure !== undefined) throw failure;
    return target;
  }

  /**
   * Starts the `deleteUser` workflow of a user (the outbox's dispatcher). One already
   * running, or one that completed, counts as started: a record dispatched twice deletes
   * once. One that failed or was terminated is started again.
   */
  async startDeletion(input: DeleteUserInput): Promise<void> {
    try {
      await this.deps.temporal.workflow.start(deleteUserWorkflow, {
        taskQueue: taskQueues.user,
        workflowId: deleteUserWorkflowId(input.userId),
        workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
        args: [{ userId: input.userId }],
      });
    } catch (err) {
      if (!(err instanceof Error && err.name === 'WorkflowExecutionAlreadyStartedError')) throw err;
    }
  }

  /**
   * Has a reset link mailed when the account exists; says nothing either way. The answer
   * waits only for one statement that looks the account up and, when found, records the
   * request in an outbox: the same work whether or not it exists. The link is made and
   * mailed afterwards by the `sendPasswordLink` workflow (retried until sent, at most
   * `maxRecoveryLinks` an hour per account).
   */
  async recoverPassword(key: string): Promise<void> {
    const k = key.trim().toLowerCase();
    const account = uuidPattern.test(k) ? { id: k } : k.includes('@') && k.length <= 254 ? { email: k } : undefined;
    if (!account) return;
    await new PasswordLinkDispatchRepository(this.deps.orm.em.fork()).addRecovery(account);
  }

  async resetPassword(token: string, password: string): Promise<UserView> {
    if (!token || token.length > 200) throw new NotFound('Invalid or expired token', 'not_found');
    const conn = this.deps.orm.em.getConnection();
    const rows = await conn.execute<{ user_id: string }[]>(
      'select user_id from password_token where digest = ? and used_at is null and expires_at > now()',
      [tokenDigest(token)],
    );
    const userId = rows[0]?.user_id;
    if (!userId) throw new NotFound('Invalid or expired token', 'not_found');
    const weak = passwordPolicyViolation(password);
    if (weak) throw new Unprocessable(weak, 'weak_password');
    // Consume the token first: of two concurrent uses only one wins.
    const claimed = await conn.execute<{ user_id: string }[]>(
      'update password_token set used_at = now() where digest = ? and used_at is null and expires_at > now() returning user_id',
      [tokenDigest(token)],
    );
    if (claimed.length === 0) throw new NotFound('Invalid or expired token', 'not_found');
    // The token is given back when the reset does not go through to its end (Keycloak or
    // the database away for a moment): a retry of the same link then does it all again,
    // rather than find the link used up and the account half recovered. A user deleted
    // meanwhile keeps it used: the link leads nowhere any more.
    const release = () => conn.execute('update password_token set used_at = null where digest = ?', [tokenDigest(token)]);
    try {
      const res = await whileUserExists(this.deps.keycloak, userId, () => this.deps.keycloak.setPassword(userId, password), 'Invalid or expired token');
      if (!res.ok) throw new Unprocessable(res.reason, 'weak_password');
      await whileUserExists(this.deps.keycloak, userId, async () => {
        await this.deps.keycloak.clearBruteForce(userId);
        // A recovered account starts over: whoever held a session before the reset holds none now.
        await this.deps.keycloak.logoutUser(userId);
      }, 'Invalid or expired token');
      await this.deps.revocations.revokeUser(userId);
    } catch (err) {
      if (!(err instanceof NotFound)) await release().catch(() => undefined);
      throw err;
    }
    // The account's other links go too (another request's, a request mailed twice).
    await this.endPasswordLinks(userId);
    const profile = await unitOfWork(this.deps.orm, async (em) => {
      const p = await new UserProfileRepository(em).findById(userId);
      if (p) p.updatedAt = new Date();
      return p;
    });
    if (!profile) throw new NotFound('Invalid or expired token', 'not_found');
    return { profile, role: await this.deps.roles.roleOf(userId) };
  }

  async login(emailInput: string, password: string): Promise<KeycloakTokens> {
    let email: string;
    try {
      email = normaliseEmail(emailInput);
    } catch {
      throw new Unauthenticated('Invalid credentials', 'invalid_credentials');
    }
    if (!password || password.length > 1024) throw new Unauthenticated('Invalid credentials', 'invalid_credentials');
    const res = await this.deps.tokens.login(email, password);
    if (res.ok) return res.tokens;
    const profile = await this.repo((r) => r.findByEmail(email));
    if (profile) {
      const status = await this.deps.keycloak.bruteForceStatus(profile.id).catch(() => undefined);
      if (status?.disabled) {
        const settings = status.failedLoginNotBefore === undefined ? await this.deps.keycloak.bruteForceSettings().catch(() => undefined) : undefined;
        const remaining = lockoutMinutesRemaining(status, () => settings);
        throw new Unauthenticated('Account locked after too many failed logins', 'account_locked', remaining === undefined ? {} : { minutes_remaining: remaining });
      }
    }
    if (res.failure === 'account_disabled') throw new Unauthenticated('Account disabled', 'account_disabled');
    throw new Unauthenticated('Invalid credentials', 'invalid_credentials');
  }

  async refresh(refreshToken: string): Promise<KeycloakTokens> {
    if (!refreshToken || refreshToken.length > 8192) throw new Unauthenticated('Invalid refresh token', 'invalid_token');
    const res = await this.deps.tokens.refresh(refreshToken);
    if (!res.ok) throw new Unauthenticated('Invalid refresh token', 'invalid_token');
    return res.tokens;
  }

  /**
   * Ends the caller's session and, given a refresh token of theirs, that token's session too
   * (another device's), in Keycloak and for the access tokens it issued. Keycloak ends the
   * session of any refresh token of this client, whoever sends it: one naming another user
   * is not sent, and ends nothing.
   */
  async logout(actor: Actor, sessionId: string, refreshToken: string): Promise<void> {
    if (refreshToken) {
      const claims = unverifiedClaims(refreshToken);
      if (claims?.sub === actor.userId && (await this.deps.tokens.logout(refreshToken))) {
        // Keycloak took the token (so its claims are genuine) and ended its session.
        if (typeof claims.sid === 'string' && claims.sid !== '' && claims.sid !== sessionId) {
          await this.deps.revocations.revokeSession(claims.sid);
        }
      }
    }
    if (sessionId) {
      await this.deps.keycloak.deleteSession(sessionId);
      await this.deps.revocations.revokeSession(sessionId);
    }
  }

  async logoutAll(actor: Actor): Promise<void> {
    await this.deps.keycloak.logoutUser(actor.userId);
    await this.deps.revocations.revokeUser(actor.userId);
  }
}
