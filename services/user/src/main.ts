import { describeFailure } from '@gef/common';
import { OutboxDispatcher } from '@gef/common/outbox';
import { runService } from '@gef/common/service';
import { loadConfig } from './config';
import { ensureSuperAdmin } from './domain/bootstrap-admin';
import { ExecutionNotices } from './domain/execution-notices';
import { PasswordLinks } from './domain/password-links';
import { registrationAbandonedAfterMs } from './domain/registrations';
import { RoleDirectory } from './domain/role-directory';
import { Users } from './domain/users';
import { KeycloakAdminClient } from './keycloak/admin-client';
import { KeycloakTokenClient } from './keycloak/token-client';
import { Mailer } from './mail/mailer';
import { migrations } from './migrations';
import { PasswordLinkDispatchRepository, passwordLinkDispatchChannel } from './repositories/password-link-dispatch-repository';
import { UserDeletionDispatchRepository, userDeletionDispatchChannel } from './repositories/user-deletion-dispatch-repository';
import { KeycloakChanges } from './revocations/keycloak-changes';
import { RevocationHub } from './revocations/revocation-hub';
import { TokenLifetime } from './revocations/token-lifetime';
import { routes } from './routes';
import { entities } from './entities';
import { createWorker } from './worker';

const config = loadConfig();

void runService({
  name: 'user',
  config,
  entities,
  migrations,
  wire: async ({ orm, logger, temporal, shutdown }) => {
    /** Runs `work` in the background until it succeeds, waiting longer after each failure (up to 10 s). */
    const untilDone = (work: () => Promise<unknown>, what: string): void => {
      void (async () => {
        for (let attempt = 1; ; attempt++) {
          try {
            await work();
            return;
          } catch (err) {
            logger.warn({ attempt, reason: describeFailure(err) }, `could not ${what} yet; retrying`);
            await new Promise((r) => setTimeout(r, Math.min(1000 * attempt, 10_000)));
          }
        }
      })();
    };
    const keycloakSettings = {
      url: config.KEYCLOAK_URL,
      realm: config.KEYCLOAK_REALM,
      clientId: config.KEYCLOAK_CLIENT_ID,
      clientSecret: config.KEYCLOAK_CLIENT_SECRET,
    };
    const keycloak = new KeycloakAdminClient(keycloakSettings, logger);
    const mailer = new Mailer({
      host: config.SMTP_HOST,
      port: config.SMTP_PORT,
      tls: config.SMTP_TLS,
      ...(config.SMTP_USER ? { login: { user: config.SMTP_USER, password: config.SMTP_PASSWORD ?? '' } } : {}),
      from: config.MAIL_FROM,
      publicUrl: config.PUBLIC_URL,
      passwordLinkUrl: config.PASSWORD_LINK_URL,
    });
    shutdown.add('mailer', () => mailer.close());
    // Revocations are kept as long as Keycloak's tokens live, whichever setting says longer.
    const tokenLifetime = new TokenLifetime({
      configuredSeconds: config.ACCESS_TOKEN_LIFETIME_SECONDS,
      keycloak,
      onLonger: async (seconds) => void (await revocations.keepFor(seconds)),
      logger,
    });
    const revocations = new RevocationHub(orm, config.DATABASE_URL, tokenLifetime.seconds, logger);
    await revocations.start();
    shutdown.add('revocations', () => revocations.stop());
    shutdown.add('token lifetime', () => tokenLifetime.stop());
    const passwordLinks = new PasswordLinks({ orm, mailer, temporal: temporal.client, logger });
    // Starts the deliveries of recovery links from the outbox, once Temporal answers.
    const linkDispatcher = new OutboxDispatcher({
      name: 'password link dispatcher',
      orm,
      store: new PasswordLinkDispatchRepository(),
      start: (request) => passwordLinks.startDelivery(request),
      logger,
      listen: { databaseUrl: config.DATABASE_URL, channel: passwordLinkDispatchChannel },
    });
    shutdown.add('password link dispatcher', () => linkDispatcher.stop());
    const roles = new RoleDirectory(keycloak, { logger });
    const users = new Users({
      orm,
      keycloak,
      tokens: new KeycloakTokenClient(keycloakSettings),
      passwordLinks,
      revocations,
      roles,
      temporal: temporal.client,
      logger,
    });
    // Starts the deleteUser workflows of the deletions recorded in the outbox, once Temporal answers.
    const deletionDispatcher = new OutboxDispatcher({
      name: 'user deletion dispatcher',
      orm,
      store: new UserDeletionDispatchRepository(),
      start: (input) => users.startDeletion(input),
      logger,
      listen: { databaseUrl: config.DATABASE_URL, channel: userDeletionDispatchChannel },
    });
    shutdown.add('user deletion dispatcher', () => deletionDispatcher.stop());
    // Changes made in Keycloak's console (a user disabled, a role or group changed) revoke tokens too.
    const keycloakChanges = new KeycloakChanges({
      orm,
      keycloak,
      revocations,
      onRolesChanged: () => roles.invalidate(),
      logger,
      tokenLifetimeSeconds: tokenLifetime.seconds,
      intervalMs: config.KEYCLOAK_EVENTS_POLL_MS,
    });
    shutdown.add('keycloak changes', () => keycloakChanges.stop());
    const notices = new ExecutionNotices({ orm, mailer, logger });
    return {
      routes: routes({ users, revocations }),
      checks: { keycloak: () => keycloak.ping() },
      worker: createWorker(temporal.settings, orm, keycloak, revocations, notices, passwordLinks, logger),
      // Keycloak may still be starting: the work at start is retried in the background.
      started: () => {
        tokenLifetime.start();
        keycloakChanges.start();
        linkDispatcher.start();
        deletionDispatcher.start();
        untilDone(
          () => ensureSuperAdmin(orm, keycloak, { email: config.GEF_ADMIN_EMAIL, password: config.GEF_ADMIN_PASSWORD }, logger, (id) => revocations.revokeUser(id)),
          'ensure the SUPERADMIN',
        );
        // A registration that died (with a process, or on Keycloak's lost answer) leaves a
        // login without a profile: cleared at start and every couple of minutes.
        const sweep = () =>
          void users.registrations.sweep().catch((err) => logger.warn({ reason: describeFailure(err) }, 'could not clear what dead registrations left yet'));
        sweep();
        const sweeping = setInterval(sweep, registrationAbandonedAfterMs);
        sweeping.unref();
        shutdown.add('registration sweep', () => clearInterval(sweeping));
      },
    };
  },
});
