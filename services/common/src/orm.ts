import { MikroORM, type EntitySchema, type MigrationObject } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { connectionLimits, type DatabaseTimeouts } from './config';

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
  /** The database's limits on the service's connections (migrations run without them). */
  timeouts?: DatabaseTimeouts;
}

/**
 * Opens the service's own database and applies its migrations. Migrations run first, on a
 * pool of their own without the statement limits (an index built on a big table may
 * take long), then the service's pool opens with them.
 */
export async function openDatabase(options: OrmOptions): Promise<MikroORM> {
  const migrating = await init(options, undefined);
  try {
    const applied = await migrating.getMigrator().up();
    if (applied.length > 0) {
      options.logger.info({ migrations: applied.map((m) => m.name) }, 'migrations applied');
    }
  } finally {
    await migrating.close();
  }
  return init(options, options.timeouts);
}

function init(options: OrmOptions, timeouts: DatabaseTimeouts | undefined): Promise<MikroORM> {
  return MikroORM.init({
    clientUrl: options.url,
    entities: options.entities,
    extensions: [Migrator],
    discovery: { warnWhenNoEntities: false },
    migrations: { migrationsList: options.migrations, transactional: true, allOrNothing: true, snapshot: false },
    pool: { min: 0, max: options.poolMax ?? 10 },
    driverOptions: {
      // Sent as start-up parameters of each connection: no round trip of their own.
      ...(timeouts ? { connection: connectionLimits(timeouts) } : {}),
      // The query builder's warnings (a pooled connection lost) go to the service's log.
      log: {
        warn: (message: string) => options.logger.warn({ component: 'database' }, message),
        error: (message: string) => options.logger.error({ component: 'database' }, message),
        deprecate: (message: string) => options.logger.debug({ component: 'database' }, message),
        debug: (message: string) => options.logger.debug({ component: 'database' }, message),
      },
    },
    // The ORM's own lines (the migrator's steps) too, never SQL with values.
    logger: (message: string) => options.logger.debug({ component: 'orm' }, message),
    colors: false,
    debug: false,
    allowGlobalContext: false,
    ensureDatabase: false,
  });
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
