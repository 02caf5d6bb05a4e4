import { describeFailure } from '@gef/common';
import { runService } from '@gef/common/service';
import { loadConfig } from './config';
import { ensureSuperAdmin } from './domain/bootstrap-admin';
import { UserProfileSchema } from './entities/user-profile';
import { KeycloakAdminClient } from './keycloak/admin-client';
import { migrations } from './migrations';
import { routes } from './routes';
import { createWorker } from './worker';

const config = loadConfig();

void runService({
  name: 'user',
  config,
  entities: [UserProfileSchema],
  migrations,
  wire: ({ orm, logger, temporal }) => {
    const keycloak = new KeycloakAdminClient({
      url: config.KEYCLOAK_URL,
      realm: config.KEYCLOAK_REALM,
      clientId: config.KEYCLOAK_CLIENT_ID,
      clientSecret: config.KEYCLOAK_CLIENT_SECRET,
    });
    return {
      routes: routes({ orm, keycloak }),
      checks: { keycloak: () => keycloak.ping() },
      worker: createWorker(temporal.settings, orm, keycloak, logger),
      // The first SUPERADMIN. Keycloak may still be starting, so retry in the background.
      started: () =>
        void (async () => {
          for (let attempt = 1; ; attempt++) {
            try {
              await ensureSuperAdmin(orm, keycloak, { email: config.GEF_ADMIN_EMAIL, password: config.GEF_ADMIN_PASSWORD }, logger);
              return;
            } catch (err) {
              logger.warn({ attempt, reason: describeFailure(err) }, 'could not ensure the SUPERADMIN yet; retrying');
              await new Promise((r) => setTimeout(r, Math.min(1000 * attempt, 10_000)));
            }
          }
        })(),
    };
  },
});
