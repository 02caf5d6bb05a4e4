import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { AlreadyExists, describeError, Unavailable, type Logger } from '@gef/common';
import type { EntityManager } from '@gef/common/orm';
import type { KeycloakAdminClient } from '../keycloak/admin-client';
import type { RevocationHub } from '../revocations/revocation-hub';

/**
 * How long a registration may take before it counts as dead: far longer than its steps may
 * (Keycloak's calls time out after 10 s each, the gateway gives up after 30 s).
 */
export const registrationAbandonedAfterMs = 2 * 60_000;

/**
 * How much earlier than its registration's row a login may be dated and still count as that
 * registration's: Keycloak dates it by its own clock, the row by the database's.
 */
const clockSkewMs = 60_000;

/** A registration under way: the request's own id, and when its row was written (by the database's clock). */
export interface Registration {
  email: string;
  attempt: string;
  startedAt: Date;
}

type RegistrationKeycloak = Pick<KeycloakAdminClient, 'findUserByEmail' | 'deleteUser'>;

/** What became of a login a registration may have left. */
type LeftLogin = 'removed' | 'none' | 'not its own';

/**
 * Registrations under way (table `user_registration`). A registration creates the login in
 * Keycloak, then writes the profile; a registration that dies between the two (the process
 * killed, Keycloak's answer lost) would leave a login without a profile, and its address
 * could never be registered again. Its row says so: the next registration of the address
 * after `registrationAbandonedAfterMs`, or the sweep, removes the login it left (and
 * refuses the tokens it was given meanwhile).
 */
export class Registrations {
  constructor(private readonly deps: { orm: MikroORM; keycloak: RegistrationKeycloak; revocations: Pick<RevocationHub, 'revokeUser'>; logger: Logger }) {}

  /**
   * Starts the registration of `email`: AlreadyExists while another registration of it is
   * under way, Unavailable while one that failed may still see its login made. One that died
   * is taken over, and the login it left is removed first.
   */
  async begin(email: string): Promise<Registration> {
    const taken = await this.take(email);
    if ('busy' in taken) {
      if (taken.busy === 'uncertain') {
        throw new Unavailable('An earlier registration of this address may still be completing: try again in a few minutes', 'unavailable');
      }
      throw new AlreadyExists('A user with this email already exists', 'already_exists');
    }
    return taken.registration;
  }

  /** Takes the address's row: a new one, or a dead one (the login its registration left removed first). */
  private async take(email: string): Promise<{ registration: Registration } | { busy: 'under way' | 'uncertain' }> {
    const attempt = randomUUID();
    const claim = await this.deps.orm.em.fork().transactional(async (em) => {
      const inserted = await em.execute<{ started_at: Date }[]>(
        'insert into user_registration (email, attempt) values (?, ?) on conflict (email) do nothing returning started_at',
        [email, attempt],
      );
      if (inserted[0]) return { startedAt: new Date(inserted[0].started_at) };
      const taken = await em.execute<{ started_at: Date; restarted_at: Date }[]>(
        `with dead as (
           select email, started_at from user_registration
            where email = ? and started_at < now() - make_interval(secs => ?)
            for update skip locked)
         update user_registration r set attempt = ?, started_at = now(), uncertain = false from dead where r.email = dead.email
         returning dead.started_at, r.started_at as restarted_at`,
        [email, registrationAbandonedAfterMs / 1000, attempt],
      );
      if (taken[0]) return { startedAt: new Date(taken[0].restarted_at), abandonedAt: new Date(taken[0].started_at) };
      const held = await em.execute<{ uncertain: boolean }[]>('select uncertain from user_registration where email = ?', [email]);
      return { busy: held[0]?.uncertain ? ('uncertain' as const) : ('under way' as const) };
    });
    if (claim.busy !== undefined) return { busy: claim.busy };
    const registration = { email, attempt, startedAt: claim.startedAt };
    if (claim.abandonedAt) {
      try {
        await this.removeLeftLogin(email, claim.abandonedAt);
      } catch (err) {
        // Keycloak is away: the row is dated back as it was, so the next try takes it over again.
        await this.deps.orm.em
          .fork()
          .execute('update user_registration set started_at = ? where email = ? and attempt = ?', [claim.abandonedAt, email, attempt])
          .catch(() => undefined);
        throw err;
      }
    }
    return { registration };
  }

  /**
   * Ends a registration whose profile is written, in the transaction that writes it. One
   * that took so long that another took its row over (and removed its login) fails, and its
   * profile with it: its login is gone.
   */
  async end(em: EntityManager, registration: Registration): Promise<void> {
    const ended = await em.execute<{ email: string }[]>('delete from user_registration where email = ? and attempt = ? returning email', [
      registration.email,
      registration.attempt,
    ]);
    if (ended.length === 0) throw new Unavailable('The registration took too long and was given up: try again', 'unavailable');
  }

  /**
   * Gives up a registration that failed. `loginMayExist` when Keycloak may have created the
   * login (its answer never came, or it could not be deleted after a later step failed): the
   * login is removed first. When that cannot be done, or no login is there yet (Keycloak may
   * still make it: an aborted request does not stop its work), the row is kept, marked
   * uncertain (written again if the profile's transaction had removed it), for the next
   * registration once it counts as dead, or the sweep.
   */
  async abandon(registration: Registration, loginMayExist: boolean): Promise<void> {
    const em = () => this.deps.orm.em.fork();
    const keep = () =>
      em().execute(
        `insert into user_registration (email, attempt, started_at, uncertain) values (?, ?, ?, true)
         on conflict (email) do update set uncertain = true where user_registration.attempt = excluded.attempt`,
        [registration.email, registration.attempt, registration.startedAt],
      );
    try {
      if (loginMayExist && (await this.removeLeftLogin(registration.email, registration.startedAt)) === 'none') {
        await keep();
        return;
      }
      await em().execute('delete from user_registration where email = ? and attempt = ?', [registration.email, registration.attempt]);
    } catch (err) {
      this.deps.logger.warn(
        { reason: describeError(err) },
        'a failed registration could not be cleaned up yet; its address is freed once it counts as dead',
      );
      await keep().catch(() => undefined);
    }
  }

  /**
   * Removes the logins that dead registrations left, and their rows: run at start and every
   * couple of minutes. Resolves to how many registrations it cleared.
   */
  async sweep(): Promise<number> {
    const dead = await this.deps.orm.em
      .fork()
      .execute<{ email: string }[]>('select email from user_registration where started_at < now() - make_interval(secs => ?) order by started_at limit 1000', [
        registrationAbandonedAfterMs / 1000,
      ]);
    let cleared = 0;
    for (const { email } of dead) {
      const taken = await this.take(email);
      if ('busy' in taken) continue; // taken over by a registration under way meanwhile
      await this.deps.orm.em.fork().execute('delete from user_registration where email = ? and attempt = ?', [email, taken.registration.attempt]);
      cleared++;
    }
    if (cleared > 0) this.deps.logger.info({ cleared }, 'removed what dead registrations left');
    return cleared;
  }

  /**
   * Deletes the login of `email` in Keycloak when a registration begun at `since` made it: it
   * has no profile, and Keycloak created it after that registration began. A login made any
   * other way (an operator's, one with a profile) is left alone. The tokens it was given are
   * refused from then on (the API's own changes in Keycloak are not followed from its events).
   */
  private async removeLeftLogin(email: string, since: Date): Promise<LeftLogin> {
    const login = await this.deps.keycloak.findUserByEmail(email);
    if (!login) return 'none';
    if (login.createdTimestamp === undefined || login.createdTimestamp < since.getTime() - clockSkewMs) return 'not its own';
    const profiles = await this.deps.orm.em.fork().execute<unknown[]>('select 1 from user_profile where id = ? or email = ?', [login.id, email]);
    if (profiles.length > 0) return 'not its own';
    await this.deps.keycloak.deleteUser(login.id);
    await this.deps.revocations.revokeUser(login.id);
    this.deps.logger.warn({ userId: login.id }, 'removed the login a dead registration left without a profile');
    return 'removed';
  }
}
