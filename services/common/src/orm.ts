import { MikroORM, type EntitySchema, type MigrationObject } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';

export type { EntityManager } from '@mikro-orm/postgresql';

export interface OrmOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  entities: EntitySchema<any, any>[];
  /** The service's migrations, in order. Applied at start. */
  migrations: MigrationObject[];
  logger: Logger;
  /** Largest number of pooled connections. */
  poolMax?: number;
}

/** Opens the service's own database and applies its migrations. */
export async function openDatabase(options: OrmOptions): Promise<MikroORM> {
  const orm = await MikroORM.init({
    clientUrl: options.url,
    entities: options.entities,
    extensions: [Migrator],
    discovery: { warnWhenNoEntities: false },
    migrations: { migrationsList: options.migrations, transactional: true, allOrNothing: true, snapshot: false },
    pool: { min: 0, max: options.poolMax ?? 10 },
    // Never let the ORM's own logger print SQL with values.
    debug: false,
    allowGlobalContext: false,
    ensureDatabase: false,
  });
  const applied = await orm.getMigrator().up();
  if (applied.length > 0) {
    options.logger.info({ migrations: applied.map((m) => m.name) }, 'migrations applied');
  }
  return orm;
}

/**
 * Runs one unit of work with its own EntityManager (a fork), as every RPC call and
 * activity must. Changes are flushed when the function returns.
 */
export async function unitOfWork<T>(orm: MikroORM, fn: (em: EntityManager) => Promise<T>): Promise<T> {
  const em = orm.em.fork();
  const result = await fn(em);
  await em.flush();
  return result;
}

/** Checks that the database answers. */
export async function pingDatabase(orm: MikroORM): Promise<void> {
  await orm.em.getConnection().execute('select 1');
}
