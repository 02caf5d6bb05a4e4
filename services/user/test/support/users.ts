import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from '@gef/common';
import { RoleDirectory } from '../../src/domain/role-directory';
import { Users, type UsersDeps } from '../../src/domain/users';

/** What a fake Keycloak must answer for the role directory. */
type RoleKeycloak = ConstructorParameters<typeof RoleDirectory>[0];

/**
 * The domain's Users over a real database and a fake Keycloak; what a test does not give
 * (tokens, links, revocations, Temporal) is a stand-in it must not reach.
 */
export function usersOver(orm: MikroORM, keycloak: RoleKeycloak, logger: Logger, deps: Partial<UsersDeps> = {}): Users {
  return new Users({
    orm,
    keycloak: keycloak as never,
    tokens: {} as never,
    passwordLinks: {} as never,
    revocations: {} as never,
    roles: new RoleDirectory(keycloak, { logger }),
    temporal: {} as never,
    logger,
    ...deps,
  });
}
